import { exceedsJsonDepth, MAX_JSON_DEPTH } from './json_depth';

describe('exceedsJsonDepth', () => {
  const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);

  it('allows the limit and refuses one more level', () => {
    expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(exceedsJsonDepth(`{"a":${nested(3)}}`, 3)).toBe(true);
    expect(exceedsJsonDepth(`{"a":${nested(2)}}`, 3)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(exceedsJsonDepth(JSON.stringify({ s: '['.repeat(500) }), 2)).toBe(false);
    expect(exceedsJsonDepth(JSON.stringify({ s: '\\"[[[[' }), 1)).toBe(false);
    expect(exceedsJsonDepth('{"s":"\\"","a":[[[]]]}', 3)).toBe(true);
  });

  it('counts siblings once, not cumulatively', () => {
    expect(exceedsJsonDepth(JSON.stringify(Array.from({ length: 1000 }, () => [[1]])), 3)).toBe(false);
  });

  it('handles a 5000-deep array in linear time without throwing', () => {
    expect(exceedsJsonDepth(nested(5000))).toBe(true);
    expect(exceedsJsonDepth(`["${'['.repeat(100000)}"]`)).toBe(false);
  });
});
