// Loads uWebSockets.js and tells whether the native binary loaded or the package fell back to `ws`.
import type * as UwsModule from 'uWebSockets.js';

export type Uws = typeof UwsModule;

export class UwsFallbackError extends Error {
  constructor() {
    super(
      'uWebSockets.js native binary did not load (the package fell back to its slow pure-JS implementation); ' +
        'run on Node 20 x64/arm64 Linux with glibc >= 2.27, or pass --allow-uws-fallback to run anyway',
    );
  }
}

let loaded: { uws: Uws; native: boolean } | undefined;

/** The uWS module and whether it is the native build. The fallback exports no SSLApp. */
export function loadUws(): { uws: Uws; native: boolean } {
  if (!loaded) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const uws = require('uWebSockets.js') as Uws;
    loaded = { uws, native: typeof (uws as Partial<Uws>).SSLApp === 'function' };
  }
  return loaded;
}
