// Channel-name patterns of the `channels` API method: `*` matches any run of characters, in linear time.

/** Longest pattern accepted: a channel name is at most a few hundred characters, a pattern need not be longer. */
export const MAX_PATTERN_LENGTH = 1024;

/**
 * A matcher for a `*` glob. No regular expression is built from the pattern: its literal pieces are found
 * left to right (the leftmost match of each piece is always the right choice when the only wildcard is `*`),
 * so matching costs one scan of the name per piece, never backtracking.
 */
export function globMatcher(pattern: string): (name: string) => boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return (name) => name === pattern;
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  const minLength = pieces.reduce((n, p) => n + p.length, 0);
  return (name) => {
    if (name.length < minLength || !name.startsWith(first) || !name.endsWith(last)) return false;
    let at = first.length;
    const end = name.length - last.length;
    for (const piece of middle) {
      const found = name.indexOf(piece, at);
      if (found === -1 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}
