// A document store for an engine that serves no documents: every call is refused with the reason.
import { DocUnavailableError, type DocStore } from './docs';

export class NoDocStore implements DocStore {
  constructor(private readonly reason: string) {}

  async get(): Promise<never> {
    throw new DocUnavailableError(this.reason);
  }

  async update(): Promise<never> {
    throw new DocUnavailableError(this.reason);
  }

  /** Nothing to wait for: the gateway serves everything else. */
  isReady(): boolean {
    return true;
  }

  async close(): Promise<void> {}
}
