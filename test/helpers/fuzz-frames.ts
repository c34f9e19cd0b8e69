/**
 * Hostile frames for live-socket fuzzing (RELIABILITY S8), built with fast-check from the golden frames in
 * test/fixtures/frames: truncated, with trailing bytes, randomly mutated, nested deeply, carrying unknown msgpack
 * extensions, or with a field of the wrong type. {@link gateVerdict} says what the wire gate of a
 * `SocketTransport` must do with each (the same functions, run in the test's process).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { decodeFrame } from '../../shared/codec.js';
import { errorCodeOf } from '../../shared/errors.js';
import { isChunkLike } from '../../shared/protocol/chunking.js';
import { closeCodeForError } from '../../shared/protocol/close-codes.js';
import { tryParseDecoded } from '../../shared/protocol/parse.js';

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/frames/', import.meta.url));
/** The golden frames, as bytes. */
export const GOLDEN_FRAMES: readonly Uint8Array[] = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.hex'))
  .sort()
  .map((f) => new Uint8Array(Buffer.from(readFileSync(`${FIXTURE_DIR}${f}`, 'utf8').replace(/\s+/g, ''), 'hex')));

const loose = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
/** `{v, kind: 'stop', id, reason: <raw value bytes>}`. */
const stopWith = (valueBytes: Uint8Array): Uint8Array =>
  concat(Uint8Array.of(0x84), loose.pack('v'), loose.pack(1), loose.pack('kind'), loose.pack('stop'), loose.pack('id'), loose.pack('m-1'), loose.pack('reason'), valueBytes);

const golden = fc.nat({ max: GOLDEN_FRAMES.length - 1 }).map((i) => GOLDEN_FRAMES[i]);

/** The kinds of hostile frame, each an arbitrary of bytes. */
export const HOSTILE_FRAME_KINDS = {
  truncated: golden.chain((g) => fc.nat({ max: Math.max(0, g.length - 1) }).map((n) => g.subarray(0, n))),
  trailing: fc.tuple(golden, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([g, tail]) => concat(g, tail)),
  mutated: fc.tuple(golden, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })).map(([g, edits]) => {
    const bytes = new Uint8Array(g);
    for (const [at, value] of edits) bytes[at % bytes.length] = value;
    return bytes;
  }),
  deep: fc.integer({ min: 1_000, max: 100_000 }).map((depth) => stopWith(concat(new Uint8Array(depth).fill(0x91), Uint8Array.of(0xc0)))),
  unknownExt: fc.tuple(fc.integer({ min: -128, max: 127 }), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([type, data]) => stopWith(concat(Uint8Array.of(0xd6, type & 0xff), data))),
  wrongType: fc.constantFrom<unknown>(42, true, null, [1, 2], { a: 1 }, 1.5, new Uint8Array(3)).map((value) => stopWith(loose.pack(value))),
  random: fc.uint8Array({ minLength: 0, maxLength: 64 }),
} as const;

/** Any hostile frame, of any kind. */
export const hostileFrame = fc.oneof(...Object.values(HOSTILE_FRAME_KINDS));

/** What the wire gate does with `bytes`: refuses it (close code, error code), or lets it through (a valid message or chunk). */
export type GateVerdict = { readonly refused: true; readonly code: string; readonly closeCode: number } | { readonly refused: false };

/** The wire gate's verdict on `bytes`, computed as `SocketTransport.handleFrame` does for a whole binary frame. */
export function gateVerdict(bytes: Uint8Array): GateVerdict {
  let value: unknown;
  try {
    value = decodeFrame(bytes);
  } catch (err) {
    const code = errorCodeOf(err);
    return { refused: true, code, closeCode: closeCodeForError(code) };
  }
  if (isChunkLike(value)) return { refused: false };
  const result = tryParseDecoded(value);
  if (result.ok) return { refused: false };
  return { refused: true, code: result.error.code, closeCode: closeCodeForError(result.error.code) };
}
