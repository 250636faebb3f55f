// Numeric `--flag N` / `--flag=N` arguments of the chaos and soak commands.

/** Fills `into` from argv by `flags` (flag → key); returns an error line for the first bad argument. */
export function parseNumberFlags<K extends string>(argv: readonly string[], flags: Record<string, K>, into: Record<K, number>): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const raw = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    const key = Object.prototype.hasOwnProperty.call(flags, flag) ? flags[flag] : undefined;
    if (!key) return `unknown argument ${arg}`;
    const value = Number(raw);
    if (raw === undefined || raw === '' || !Number.isFinite(value) || value < 0) return `${flag} takes a number >= 0, not ${raw ?? 'nothing'}`;
    into[key] = value;
  }
  return undefined;
}
