import fc from 'fast-check';
import { Packr, pack as looseEncode } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../../../shared/codec.js';
import { ErrorCode, OrchestratorError, ProtocolError } from '../../../../shared/errors.js';
import { MAX_FRAME_DEPTH } from '../../../../shared/protocol/frame-scan.js';
import type { Message } from '../../../../shared/protocol/messages.js';
import { expectKind, parseMessage, ProtocolVersionError, tryParseMessage } from '../../../../shared/protocol/parse.js';
import { sampleHfWelcome, sampleList, sampleMessages } from '../../../fixtures/frames/samples.js';
import { HF_DIR_MAX_FILES } from '../../../../shared/model/hf-dir-files.js';

// Encodes arbitrary data with the same wire options as encodeMessage but no type checks (for hostile frames).
const raw = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const enc = (value: unknown): Uint8Array => raw.pack(value);

function codeOf(bytes: Uint8Array): string {
  try {
    parseMessage(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return (err as ProtocolError).code;
  }
  throw new Error('expected parseMessage to throw');
}

function messageOf(bytes: Uint8Array): string {
  try {
    parseMessage(bytes);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected parseMessage to throw');
}

const stop = (extra: Record<string, unknown> = {}) => ({ v: 1, kind: 'stop', id: 'm1', reason: 'done', ...extra });

describe('parseMessage', () => {
  it('accepts every sample kind', () => {
    for (const msg of sampleList()) expect(parseMessage(encodeMessage(msg)).kind).toBe(msg.kind);
  });

  it('refuses empty, truncated and trailing bytes as malformed', () => {
    const bytes = encodeMessage(sampleMessages().grad_request);
    expect(codeOf(new Uint8Array(0))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    for (const cut of [1, 7, bytes.length - 1]) {
      expect(codeOf(bytes.subarray(0, cut))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    longer[bytes.length] = 0xc0;
    expect(messageOf(longer)).toMatch(/trailing bytes/);
  });

  it('refuses a frame that is not a map', () => {
    expect(codeOf(enc([1, 'stop']))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    expect(codeOf(enc('hello'))).toBe(ErrorCode.PROTOCOL_MALFORMED);
  });

  it('names both versions on a version mismatch', () => {
    const result = tryParseMessage(enc(stop({ v: 2 })));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(ProtocolVersionError);
    expect(result.error.code).toBe(ErrorCode.PROTOCOL_VERSION);
    expect(result.error.message).toMatch(/v2.*v1/);
    expect((result.error as ProtocolVersionError).receivedVersion).toBe(2);
    expect(result.id).toBe('m1');
  });

  it('reads error frames of any version (their layout is frozen)', () => {
    const msg = parseMessage(enc({ v: 7, kind: 'error', id: 'e1', code: 'E_FUTURE_THING', message: 'from the future', retryable: true }));
    expect(msg).toMatchObject({ kind: 'error', v: 7, code: 'E_FUTURE_THING', retryable: true });
  });

  it('refuses a missing or non-numeric v', () => {
    expect(messageOf(enc({ kind: 'stop', id: 'x', reason: 'r' }))).toMatch(/field v/);
    expect(codeOf(enc(stop({ v: '1' })))).toBe(ErrorCode.PROTOCOL_MALFORMED);
  });

  it('names an unknown kind', () => {
    const bytes = enc({ v: 1, kind: 'train_request', id: 'x' });
    expect(codeOf(bytes)).toBe(ErrorCode.PROTOCOL_UNKNOWN_KIND);
    expect(messageOf(bytes)).toMatch(/train_request/);
    expect(codeOf(enc({ v: 1, kind: 3, id: 'x' }))).toBe(ErrorCode.PROTOCOL_MALFORMED);
  });

  it('names the path of an ill-typed or missing field', () => {
    const req = sampleMessages().grad_request;
    expect(messageOf(enc({ ...req, step: 'three' }))).toMatch(/'grad_request' frame: step:/);
    const badShape = { ...req, batch: { ...req.batch, inputIds: { ...req.batch.inputIds, shape: [2, -3] } } };
    expect(messageOf(enc(badShape))).toMatch(/batch\.inputIds\.shape\[1\]/);
    const badData = { ...req, params: [req.params![0], { ...req.params![1], data: 'not bytes' }] };
    expect(messageOf(enc(badData))).toMatch(/params\[1\]\.data/);
    const { capabilities: _omitted, ...hello } = sampleMessages().hello;
    expect(codeOf(enc(hello))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    expect(messageOf(enc(hello))).toMatch(/capabilities/);
    expect(messageOf(enc({ ...req, params: [{ ...req.params![0], codec: 'zstd' }] }))).toMatch(/params\[0\]\.codec/);
  });

  it('refuses shipped model file names that are paths, traversals or hidden, and bad file hashes', () => {
    const welcome = sampleHfWelcome();
    const withFile = (file: Record<string, unknown>) => enc({ ...welcome, model: { ...welcome.model, files: [...welcome.model.files!, file] } });
    const file = { name: 'tokenizer_config.json', sha256: '04'.repeat(32), sizeBytes: 268 };
    expect(expectKind(parseMessage(withFile(file)), 'welcome').model.files).toHaveLength(4);
    for (const name of ['../config.json', '..', '.', 'a/b.json', '/etc/passwd', 'C:\\x', 'dir\\f', '.hidden', 'a..b', '', 'x\u0000y', 'é.json', 'a'.repeat(256)]) {
      expect(codeOf(withFile({ ...file, name })), name).toBe(ErrorCode.PROTOCOL_MALFORMED);
    }
    expect(messageOf(withFile({ ...file, name: '../x' }))).toMatch(/model\.files\[3\]\.name: expected a plain file name/);
    expect(codeOf(withFile({ ...file, sha256: 'AB'.repeat(32) }))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    expect(codeOf(withFile({ ...file, sizeBytes: -1 }))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    const many = Array.from({ length: HF_DIR_MAX_FILES + 1 }, (_, i) => ({ ...file, name: `f${i}` }));
    expect(codeOf(enc({ ...welcome, model: { ...welcome.model, files: many } }))).toBe(ErrorCode.PROTOCOL_MALFORMED);
  });

  it('tolerates unknown optional fields (forward compatibility) and drops them', () => {
    const req = sampleMessages().grad_request;
    const newer = { ...req, priority: 5, batch: { ...req.batch, packing: 'greedy' } };
    const msg = expectKind(parseMessage(enc(newer)), 'grad_request');
    expect(msg.step).toBe(req.step);
    expect('priority' in msg).toBe(false);
  });

  it('accepts a non-finite loss sum as data', () => {
    const res = sampleMessages().grad_result;
    const msg = expectKind(parseMessage(encodeMessage({ ...res, stats: { ...res.stats, lossSum: Number.NaN } })), 'grad_result');
    expect(msg.stats.lossSum).toBeNaN();
  });

  it('refuses __proto__, constructor and prototype keys at any depth', () => {
    const top = JSON.parse('{"v":1,"kind":"stop","id":"x","reason":"r","__proto__":{"polluted":true}}');
    expect(codeOf(enc(top))).toBe(ErrorCode.PROTOCOL_FORBIDDEN_KEY);
    const welcome = sampleMessages().welcome;
    expect(codeOf(enc({ ...welcome, settings: { a: [{ constructor: 1 }] } }))).toBe(ErrorCode.PROTOCOL_FORBIDDEN_KEY);
    expect(codeOf(enc({ ...welcome, settings: { deep: { deeper: { prototype: {} } } } }))).toBe(ErrorCode.PROTOCOL_FORBIDDEN_KEY);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it(`bounds nesting at ${MAX_FRAME_DEPTH} levels`, () => {
    const nest = (levels: number): unknown => (levels === 0 ? 1 : [nest(levels - 1)]);
    // The frame map is depth 1 and `settings` depth 2, so it may hold MAX_FRAME_DEPTH - 2 nested arrays.
    const ok = { ...sampleMessages().welcome, settings: { x: nest(MAX_FRAME_DEPTH - 2) } };
    expect(parseMessage(enc(ok)).kind).toBe('welcome');
    const tooDeep = { ...sampleMessages().welcome, settings: { x: nest(MAX_FRAME_DEPTH - 1) } };
    expect(messageOf(enc(tooDeep))).toMatch(/nesting deeper than/);
    // A hostile frame of 100k nested arrays must fail cleanly, not overflow the stack.
    expect(codeOf(new Uint8Array(100_000).fill(0x91))).toBe(ErrorCode.PROTOCOL_MALFORMED);
  });

  it('refuses extension types, 0xc1, non-string keys, unsafe int64 and impossible lengths', () => {
    expect(messageOf(looseEncode(stop({ reason: new Date(0) })))).toMatch(/not allowed/);
    expect(messageOf(looseEncode(stop({ reason: undefined })))).toMatch(/not allowed/);
    expect(codeOf(Uint8Array.from([0x81, 0xa1, 0x76, 0xc1]))).toBe(ErrorCode.PROTOCOL_MALFORMED);
    expect(messageOf(Uint8Array.from([0x81, 0x01, 0x02]))).toMatch(/not a string/);
    expect(messageOf(Uint8Array.from([0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 0]))).toMatch(/uint64/);
    expect(messageOf(Uint8Array.from([0xd3, 0xff, 0xdf, 0xff, 0xff, 0, 0, 0, 0]))).toMatch(/int64/);
    expect(messageOf(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]))).toMatch(/declares/);
    expect(messageOf(Uint8Array.from([0xc6, 0x7f, 0xff, 0xff, 0xff]))).toMatch(/truncated/);
  });

  it('accepts int64 encodings of safe integers', () => {
    // {n: 2^53 - 1} as uint64 and {n: -(2^53 - 1)} as int64.
    const frame = Uint8Array.from([0x81, 0xa1, 0x6e, 0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const neg = Uint8Array.from([0x81, 0xa1, 0x6e, 0xd3, 0xff, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    // Not frames (no v), but the scan must admit them: the failure is about field v, not the integer.
    expect(messageOf(frame)).toMatch(/field v/);
    expect(messageOf(neg)).toMatch(/field v/);
  });

  it('expectKind narrows or throws E_PROTOCOL_UNEXPECTED', () => {
    const msg: Message = sampleMessages().stop;
    expect(expectKind(msg, 'stop').reason).toBe('run finished');
    expect(() => expectKind(msg, 'hello')).toThrowError(expect.objectContaining({ code: ErrorCode.PROTOCOL_UNEXPECTED }));
  });
});

describe('parseMessage under random mutation (property)', () => {
  const frames = sampleList().map((m) => encodeMessage(m));

  function onlyOurErrors(bytes: Uint8Array): boolean {
    try {
      parseMessage(bytes);
      return true;
    } catch (err) {
      return err instanceof OrchestratorError;
    }
  }

  it('byte flips, cuts, insertions and deletions never throw anything but OrchestratorError', () => {
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('cut' as const), at: fc.nat(), byte: fc.constant(0) }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), byte: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.nat({ max: frames.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), (which, ops) => {
        let bytes = Array.from(frames[which]);
        for (const { op, at, byte } of ops) {
          const i = bytes.length === 0 ? 0 : at % bytes.length;
          if (op === 'set' && bytes.length > 0) bytes[i] = byte;
          else if (op === 'cut') bytes = bytes.slice(0, i);
          else if (op === 'insert') bytes.splice(i, 0, byte);
          else if (op === 'delete') bytes.splice(i, 1);
        }
        return onlyOurErrors(Uint8Array.from(bytes));
      }),
      { numRuns: 3000, seed: 20240601 },
    );
  });

  it('fields replaced by arbitrary values never throw anything but OrchestratorError', () => {
    const messages = sampleList();
    fc.assert(
      fc.property(
        fc.nat({ max: messages.length - 1 }),
        fc.string({ maxLength: 12 }),
        fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 16 }), fc.constant(null)),
        (which, key, value) => {
          const msg = messages[which] as unknown as Record<string, unknown>;
          const keys = Object.keys(msg);
          const target = keys.includes(key) ? key : keys[key.length % keys.length];
          return onlyOurErrors(enc({ ...msg, [target]: value }));
        },
      ),
      { numRuns: 2000, seed: 42 },
    );
  });
});
