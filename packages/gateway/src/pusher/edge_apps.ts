// Pusher apps as a gateway serves them: the app (apps.ts) plus the Switchboard namespace its channels live in.
import { parsePusherAppFlag, parsePusherApps, PusherConfigError, type PusherApp } from './apps';

export interface PusherEdgeApp {
  readonly app: PusherApp;
  /**
   * Namespace the app's channels map into: Pusher channel `N` is Switchboard channel `<namespace>:N`. Undefined:
   * `N` itself, under the `without_namespace` options. Pusher names cannot hold ':', so no name escapes it.
   */
  readonly namespace: string | undefined;
}

/** Same alphabet as the config file's namespace names. */
function isNamespaceName(v: string): boolean {
  if (v === '' || v.length > 200 || v === '__proto__') return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f || c === 0x2e;
    if (!ok) return false;
  }
  return true;
}

/**
 * Parses the `pusher.apps` list of a config file: each app's own keys by parsePusherApps, plus the optional
 * `namespace` Switchboard adds. Throws PusherConfigError naming the key; unknown keys are returned for a warning.
 */
export function parsePusherEdgeApps(value: unknown, path = 'pusher.apps'): { apps: PusherEdgeApp[]; unknownKeys: string[] } {
  const namespaces: (string | undefined)[] = [];
  let stripped = value;
  if (Array.isArray(value)) {
    stripped = value.map((raw: unknown, i: number) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !('namespace' in raw)) {
        namespaces.push(undefined);
        return raw;
      }
      const { namespace, ...rest } = raw as Record<string, unknown>;
      if (namespace !== undefined && namespace !== null && (typeof namespace !== 'string' || !isNamespaceName(namespace))) {
        const shown = typeof namespace === 'string' ? JSON.stringify(namespace) : String(namespace);
        throw new PusherConfigError(`${path}[${i}].namespace: expected a namespace name of letters, digits, "-", "_" and ".", got ${shown}`);
      }
      namespaces.push(typeof namespace === 'string' ? namespace : undefined);
      return rest;
    });
  }
  const parsed = parsePusherApps(stripped, path);
  return { apps: parsed.apps.map((app, i) => ({ app, namespace: namespaces[i] })), unknownKeys: parsed.unknownKeys };
}

/** The single app of `--pusher-app ID:KEY:SECRET`: default limits, no webhooks, channels without a namespace. */
export function parsePusherEdgeAppFlag(value: string, source = '--pusher-app'): PusherEdgeApp {
  return { app: parsePusherAppFlag(value, source), namespace: undefined };
}
