// Finds the members of a JSON object's text without parsing their values, so stored JSON can be relayed as raw bytes.

/**
 * Calls `member` with each top-level key of the JSON object `text` and the [start, end) of its value's text.
 * One pass, no allocation but the keys; keys are compared as written (the encoders here never escape them).
 * Throws on text that is not a JSON object: callers pass only JSON this codebase wrote.
 */
export function forEachMember(text: string, member: (key: string, start: number, end: number) => void): void {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b /* { */) throw new Error('stored JSON is not an object');
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === 0x7d /* } */) return;
  for (;;) {
    if (text.charCodeAt(i) !== 0x22 /* " */) throw new Error('stored JSON has a key that is not a string');
    const keyEnd = stringEnd(text, i);
    const key = text.slice(i + 1, keyEnd - 1);
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a /* : */) throw new Error('stored JSON has a key without a value');
    const start = skipSpace(text, i + 1);
    const end = valueEnd(text, start);
    member(key, start, end);
    i = skipSpace(text, end);
    const c = text.charCodeAt(i);
    if (c === 0x7d) return;
    if (c !== 0x2c /* , */) throw new Error('stored JSON is cut short');
    i = skipSpace(text, i + 1);
  }
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index after the closing quote of the string starting at `i`. */
function stringEnd(text: string, i: number): number {
  // Jumps from quote to quote (a native search); a quote after an odd run of backslashes is escaped. Each run is
  // counted once, for the one quote after it: linear in the string.
  for (let at = i + 1; ; ) {
    const quote = text.indexOf('"', at);
    if (quote === -1) throw new Error('stored JSON has an unterminated string');
    let b = quote - 1;
    while (b > i && text.charCodeAt(b) === 0x5c /* \ */) b--;
    if ((quote - 1 - b) % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

/** The index after the value starting at `i`: a string, an object or array (brackets counted outside strings), or a literal. */
function valueEnd(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 0x22) return stringEnd(text, i);
  if (first === 0x7b || first === 0x5b /* [ */) {
    let depth = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) i = stringEnd(text, i) - 1;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
    }
    throw new Error('stored JSON is cut short');
  }
  // A number, true, false or null: up to the next delimiter.
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return i;
  }
  return i;
}
