// No frame a client can send makes the decoder throw: it yields commands, errors or a fatal verdict.
import fc from 'fast-check';
import { decodeFrame } from './codec';
import { methods } from './validate';

const anyJson = fc.jsonValue({ maxDepth: 4 });
/** Objects shaped like commands: an id of any type and a known or unknown method with any body. */
const commandLike = fc.record(
  {
    id: fc.oneof(fc.integer(), fc.string(), fc.double(), fc.constant(null)),
    method: fc.oneof(fc.constantFrom(...methods), fc.string()),
    body: anyJson,
  },
  { requiredKeys: ['method', 'body'] },
).map(({ id, method, body }) => JSON.stringify(id === undefined ? { [method]: body } : { id, [method]: body }));

it('never throws, whatever the frame', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string(), anyJson.map((v) => JSON.stringify(v)), commandLike), { maxLength: 8 }), (lines) => {
      const items = decodeFrame(lines.join('\n'));
      for (const item of items) expect(['command', 'pong', 'error', 'fatal']).toContain(item.kind);
      // Nothing is decoded after a fatal line.
      const fatal = items.findIndex((i) => i.kind === 'fatal');
      if (fatal !== -1) expect(fatal).toBe(items.length - 1);
    }),
    { numRuns: 3000 },
  );
});
