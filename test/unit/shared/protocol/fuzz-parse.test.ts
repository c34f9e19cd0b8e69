/**
 * Frame fuzzing (RELIABILITY.md S8, S9) of `parseMessage`, the one gate from bytes to a message. Every fuzzed
 * input must either parse into a valid message (that re-encodes and parses again) or throw a ProtocolError whose
 * code is one of the stable E_PROTOCOL_* codes: never another exception, never a hang (no frame may take 1 s;
 * a separate timed pass holds the S8 budget of p99 ≤ 10 ms per frame), never a polluted prototype.
 *
 * Inputs: the golden frames (test/fixtures/frames/*.hex) truncated, with trailing bytes, with random byte
 * mutations (set, insert, delete, cut); nesting up to 100,000 levels; unknown msgpack extensions (fixext, ext8/16/32,
 * every type byte); sample messages with a field replaced by a value of the wrong type; `__proto__`, `constructor`
 * and `prototype` keys inserted at any depth; and plain random bytes.
 *
 * Size: by default about 10,500 frames in all (the CI figure of issue 5, a few seconds here). For a long soak run,
 * set SWARMTUNE_FUZZ_RUNS to the number of runs per property (the default is 1,500; 7 properties), e.g.
 *   SWARMTUNE_FUZZ_RUNS=15000 npx vitest run test/unit/shared/protocol/fuzz-parse.test.ts   (~100,000 frames)
 * and SWARMTUNE_FUZZ_SEED to replay one seed (fast-check prints the seed and path of any failure).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../../../shared/codec.js';
import { ErrorCode, ProtocolError } from '../../../../shared/errors.js';
import { MSG_KINDS, type Message } from '../../../../shared/protocol/messages.js';
import { parseMessage } from '../../../../shared/protocol/parse.js';
import { sampleList } from '../../../fixtures/frames/samples.js';

const RUNS = Math.max(1, Number(process.env.SWARMTUNE_FUZZ_RUNS ?? '') || 1_500);
const SEED = process.env.SWARMTUNE_FUZZ_SEED === undefined ? undefined : Number(process.env.SWARMTUNE_FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };
/** S8's budget, p99 per frame: printed with the measured figure (reliability report); speed belongs to benchmarks. */
const P99_BUDGET_MS = 10;
/** What the test asserts: five times the budget, so that a loaded shared machine does not decide it, a regression does. */
const P99_GROSS_BOUND_MS = 5 * P99_BUDGET_MS;
/** No single frame may take this long: far above any honest frame, far below a hang. */
const MAX_FRAME_MS = 1_000;

const PROTOCOL_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode).filter((c) => c.startsWith('E_PROTOCOL_')));
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

const FIXTURE_DIR = fileURLToPath(new URL('../../../fixtures/frames/', import.meta.url));
const GOLDEN: readonly Uint8Array[] = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.hex'))
  .sort()
  .map((f) => new Uint8Array(Buffer.from(readFileSync(`${FIXTURE_DIR}${f}`, 'utf8').replace(/\s+/g, ''), 'hex')));

// Encodes arbitrary values with the wire options of encodeMessage but no checks (for hostile frames).
const loose = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const enc = (value: unknown): Uint8Array => loose.pack(value);

/** Per-frame handling times, for the S8 figure; and the outcome counts. */
const timesMs: number[] = [];
const outcomes = { parsed: 0, rejected: new Map<string, number>() };
let timedP99Ms: number | undefined;

function assertNoPollution(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(PROTOTYPE_KEYS);
}
const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype);

/** Every object in a parsed message is plain (or a byte string) and has no forbidden own key. */
function assertClean(value: unknown, depth = 0): void {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
  expect(depth).toBeLessThan(64);
  if (!Array.isArray(value)) {
    expect([Object.prototype, null]).toContain(Object.getPrototypeOf(value));
    for (const key of FORBIDDEN_KEYS) expect(Object.hasOwn(value, key)).toBe(false);
  }
  for (const child of Object.values(value)) assertClean(child, depth + 1);
}

/** The property every input must satisfy; returns the error code, or 'ok' when the frame parsed. */
function checkFrame(bytes: Uint8Array): string {
  const started = performance.now();
  let message: Message | undefined;
  let error: unknown;
  try {
    message = parseMessage(bytes);
  } catch (err) {
    error = err;
  }
  const elapsedMs = performance.now() - started;
  timesMs.push(elapsedMs);
  expect(elapsedMs).toBeLessThan(MAX_FRAME_MS);
  assertNoPollution();
  if (message === undefined) {
    if (!(error instanceof ProtocolError)) throw new Error(`parseMessage threw a non-ProtocolError: ${String(error)}`, { cause: error });
    expect(PROTOCOL_CODES).toContain(error.code);
    expect(error.message.length).toBeGreaterThan(0);
    outcomes.rejected.set(error.code, (outcomes.rejected.get(error.code) ?? 0) + 1);
    return error.code;
  }
  expect(MSG_KINDS).toContain(message.kind);
  assertClean(message);
  // A valid message is one the gate accepts again after a round trip.
  expect(parseMessage(encodeMessage(message)).kind).toBe(message.kind);
  outcomes.parsed++;
  return 'ok';
}

const golden = fc.nat({ max: GOLDEN.length - 1 }).map((i) => GOLDEN[i]);

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** msgpack bytes of an extension value of type `type` (a signed byte) with `data`, in the given form. */
function extBytes(form: number, type: number, data: Uint8Array): Uint8Array {
  const t = type & 0xff;
  const fixed = [1, 2, 4, 8, 16];
  if (form < fixed.length) {
    const n = fixed[form];
    const body = new Uint8Array(n);
    body.set(data.subarray(0, n));
    return concat(Uint8Array.of(0xd4 + form, t), body);
  }
  if (form === 5) return concat(Uint8Array.of(0xc7, data.length & 0xff, t), data.subarray(0, data.length & 0xff));
  if (form === 6) return concat(Uint8Array.of(0xc8, 0, data.length, t), data);
  return concat(Uint8Array.of(0xc9, 0, 0, 0, data.length, t), data);
}

/** A map header for `n` entries (n < 16). */
const fixmap = (n: number): Uint8Array => Uint8Array.of(0x80 | n);

/** `{v, kind: 'stop', id, reason: <value bytes>}` with the value spliced in raw. */
function stopWithRawReason(valueBytes: Uint8Array): Uint8Array {
  return concat(fixmap(4), enc('v'), enc(1), enc('kind'), enc('stop'), enc('id'), enc('m-1'), enc('reason'), valueBytes);
}

/** Paths to every map inside a value (objects only; byte strings and arrays' maps included). */
function mapPaths(value: unknown, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return out;
  if (!Array.isArray(value)) out.push(path);
  for (const [k, child] of Object.entries(value)) mapPaths(child, [...path, Array.isArray(value) ? Number(k) : k], out);
  return out;
}

/** Paths to every leaf or container field below the top level. */
function fieldPaths(value: unknown, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (path.length > 0) out.push(path);
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return out;
  for (const [k, child] of Object.entries(value)) fieldPaths(child, [...path, Array.isArray(value) ? Number(k) : k], out);
  return out;
}

function at(root: unknown, path: readonly (string | number)[]): Record<string | number, unknown> {
  let node = root as Record<string | number, unknown>;
  for (const key of path) node = node[key] as Record<string | number, unknown>;
  return node;
}

/** A deep, mutable, plain copy of a message (byte strings copied). */
function plainCopy(value: unknown): unknown {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(plainCopy);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainCopy(v)]));
  return value;
}

const SAMPLES = sampleList();

describe('fuzzing parseMessage (S8, S9)', () => {
  afterAll(() => {
    const sorted = [...timesMs].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
    const rejected = Object.fromEntries(outcomes.rejected);
    console.log(JSON.stringify({ fuzz_frames: timesMs.length, parsed: outcomes.parsed, rejected, p99_ms: +p99.toFixed(3), max_ms: +(sorted.at(-1) ?? 0).toFixed(3), timed_p99_ms: timedP99Ms }));
  });

  // The S8 budget, timed apart from the assertions above and as the best of three passes, so that another test
  // file sharing the 2 cores does not decide the figure.
  it(`handles mutated golden frames within p99 ${P99_BUDGET_MS} ms per frame (S8)`, () => {
    const frames = fc.sample(
      fc.tuple(golden, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([bytes, sets]) => {
        const out = Uint8Array.from(bytes);
        for (const [where, byte] of sets) out[where % out.length] = byte;
        return out;
      }),
      { numRuns: 2_000, seed: 5 },
    );
    const passes = [0, 1, 2].map(() => {
      const times = frames.map((bytes) => {
        const started = performance.now();
        try {
          parseMessage(bytes);
        } catch {
          // Outcomes are checked by the properties above; this pass only times.
        }
        return performance.now() - started;
      });
      return times.sort((a, b) => a - b)[Math.floor(times.length * 0.99)];
    });
    timedP99Ms = +Math.min(...passes).toFixed(3);
    expect(timedP99Ms).toBeLessThanOrEqual(P99_GROSS_BOUND_MS);
  });

  it('every golden frame parses as it is (the seeds of the mutations are valid)', () => {
    // One per kind, plus welcome_hf.hex (a welcome announcing a shipped HF directory's files).
    expect(GOLDEN.length).toBe(MSG_KINDS.length + 1);
    for (const bytes of GOLDEN) expect(checkFrame(bytes)).toBe('ok');
  });

  it('truncated golden frames are refused as malformed', () => {
    fc.assert(
      fc.property(golden, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (bytes, cut) => {
        expect(checkFrame(bytes.subarray(0, Math.floor(bytes.length * cut)))).toBe(ErrorCode.PROTOCOL_MALFORMED);
      }),
      params,
    );
  });

  it('golden frames with trailing bytes are refused as malformed', () => {
    fc.assert(
      fc.property(golden, fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes, tail) => {
        expect(checkFrame(concat(bytes, tail))).toBe(ErrorCode.PROTOCOL_MALFORMED);
      }),
      params,
    );
  });

  it('S8: random byte mutations of golden frames parse or are refused with an E_PROTOCOL_* code', () => {
    const mutation = fc.record({
      op: fc.constantFrom('set', 'insert', 'delete', 'xor-bit'),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(golden, fc.array(mutation, { minLength: 1, maxLength: 8 }), (bytes, ops) => {
        const out = [...bytes];
        for (const { op, at: where, byte } of ops) {
          const i = out.length === 0 ? 0 : where % out.length;
          if (op === 'set') out[i] = byte;
          else if (op === 'insert') out.splice(i, 0, byte);
          else if (op === 'delete') out.splice(i, 1);
          else out[i] ^= 1 << (byte % 8);
        }
        checkFrame(Uint8Array.from(out));
      }),
      params,
    );
  });

  it('deep nesting (up to 100,000 levels, arrays or maps, at the top or in a field) is refused without overflow', () => {
    fc.assert(
      fc.property(fc.integer({ min: 33, max: 100_000 }), fc.boolean(), fc.boolean(), (depth, useMaps, inField) => {
        // Each level is a one-element array (0x91) or a one-entry map {"k": ...} (0x81 a1 6b).
        const level = useMaps ? Uint8Array.of(0x81, 0xa1, 0x6b) : Uint8Array.of(0x91);
        const nested = new Uint8Array(level.length * depth + 1);
        for (let i = 0; i < depth; i++) nested.set(level, i * level.length);
        nested[nested.length - 1] = 0xc0;
        expect(checkFrame(inField ? stopWithRawReason(nested) : nested)).toBe(ErrorCode.PROTOCOL_MALFORMED);
      }),
      { ...params, numRuns: Math.max(1, Math.floor(RUNS / 5)) },
    );
  });

  it('msgpack extensions of every type and form are refused, at the top, in a field or in a golden frame', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -128, max: 127 }),
        fc.integer({ min: 0, max: 7 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom('top', 'field', 'golden-tail'),
        golden,
        (type, form, data, where, frame) => {
          const ext = extBytes(form, type, data);
          // Appended after a golden frame's last value, an ext is both a trailing value and an extension.
          const bytes = where === 'top' ? ext : where === 'field' ? stopWithRawReason(ext) : concat(frame, ext);
          expect(checkFrame(bytes)).toBe(ErrorCode.PROTOCOL_MALFORMED);
        },
      ),
      params,
    );
  });

  it('sample messages with a field of the wrong type parse into a valid message or are refused', () => {
    const wrongValue = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 8 }),
      fc.uint8Array({ maxLength: 12 }),
      fc.array(fc.integer(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
      fc.constant(2 ** 60),
      fc.constant(Number.NaN),
    );
    fc.assert(
      fc.property(fc.nat({ max: SAMPLES.length - 1 }), fc.nat(), wrongValue, (which, pathPick, value) => {
        const msg = plainCopy(SAMPLES[which]);
        const paths = fieldPaths(msg);
        const path = paths[pathPick % paths.length];
        at(msg, path.slice(0, -1))[path[path.length - 1]] = value;
        checkFrame(enc(msg));
      }),
      params,
    );
  });

  it('__proto__, constructor and prototype keys at any depth are refused with E_PROTOCOL_FORBIDDEN_KEY', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: SAMPLES.length - 1 }),
        fc.nat(),
        fc.constantFrom(...FORBIDDEN_KEYS),
        fc.constantFrom<unknown>({ polluted: 'yes' }, 'yes', 1, null, [1]),
        (which, mapPick, key, value) => {
          const msg = plainCopy(SAMPLES[which]);
          const maps = mapPaths(msg);
          // defineProperty: an own key named __proto__ (assignment would set the prototype instead).
          Object.defineProperty(at(msg, maps[mapPick % maps.length]), key, { value, enumerable: true, configurable: true, writable: true });
          expect(checkFrame(enc(msg))).toBe(ErrorCode.PROTOCOL_FORBIDDEN_KEY);
        },
      ),
      params,
    );
  });

  it('plain random bytes parse or are refused with an E_PROTOCOL_* code', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => void checkFrame(bytes)),
      params,
    );
  });
});
