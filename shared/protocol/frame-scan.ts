/**
 * A structural pre-scan of a msgpack frame, run before any object is built from untrusted bytes.
 *
 * It walks the encoding without decoding values and admits only the subset swarmtune frames use: nil,
 * booleans, integers within ±(2^53 − 1), floats, strings, byte strings, arrays, and maps whose keys are
 * strings other than `__proto__`, `constructor` and `prototype`. It rejects extension types (msgpackr would
 * otherwise revive Dates, records, typed arrays...), the never-used byte 0xc1, nesting deeper than
 * {@link MAX_FRAME_DEPTH}, container lengths that cannot fit in the bytes left, truncation and trailing bytes.
 * Iterative, so a hostile frame cannot overflow the stack; O(number of values), byte strings are skipped.
 */
import { ErrorCode, ProtocolError } from '../errors.js';

/**
 * Deepest nesting of arrays and maps a frame may have (the top-level map is depth 1). Frames of v1 need 5;
 * the margin is for free-form `settings`.
 */
export const MAX_FRAME_DEPTH = 32;

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Largest integer a float64 holds exactly, as the unsigned 64-bit big-endian halves compare. */
const MAX_SAFE_HIGH = 0x1fffff;

function malformed(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `malformed frame: ${message}`);
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Checks that `bytes` hold exactly one msgpack value of the admitted subset.
 * @throws ProtocolError E_PROTOCOL_MALFORMED (naming the byte offset) or E_PROTOCOL_FORBIDDEN_KEY.
 */
export function scanFrame(bytes: Uint8Array, maxDepth: number = MAX_FRAME_DEPTH): void {
  const end = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  // Open containers: items still to read (a map of n entries holds 2n items, keys at even counts).
  const remaining: number[] = [1];
  const isMap: boolean[] = [false];

  const need = (n: number, at: number): void => {
    if (pos + n > end) throw malformed(`truncated: value at byte ${at} needs ${n} more bytes, ${end - pos} left`);
  };
  const openContainer = (count: number, map: boolean, at: number): void => {
    const items = map ? count * 2 : count;
    if (items > end - pos) {
      throw malformed(`${map ? 'map' : 'array'} at byte ${at} declares ${count} entries but only ${end - pos} bytes remain`);
    }
    if (remaining.length > maxDepth) throw malformed(`nesting deeper than ${maxDepth} at byte ${at}`);
    if (items > 0) {
      remaining.push(items);
      isMap.push(map);
    }
  };

  while (remaining.length > 0) {
    const top = remaining.length - 1;
    if (remaining[top] === 0) {
      remaining.pop();
      isMap.pop();
      continue;
    }
    const isKey = isMap[top] && remaining[top] % 2 === 0;
    remaining[top]--;
    const at = pos;
    need(1, at);
    const b = bytes[pos++];

    if (isKey) {
      let len: number;
      if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
      else if (b === 0xd9) (need(1, at), (len = bytes[pos]), (pos += 1));
      else if (b === 0xda) (need(2, at), (len = view.getUint16(pos)), (pos += 2));
      else if (b === 0xdb) (need(4, at), (len = view.getUint32(pos)), (pos += 4));
      else throw malformed(`map key at byte ${at} is not a string (type byte ${hex(b)})`);
      need(len, at);
      if (len === 9 || len === 11) {
        const key = String.fromCharCode(...bytes.subarray(pos, pos + len));
        if (FORBIDDEN_KEYS.has(key)) {
          throw new ProtocolError(ErrorCode.PROTOCOL_FORBIDDEN_KEY, `forbidden key "${key}" at byte ${at} of the frame`);
        }
      }
      pos += len;
      continue;
    }

    if (b <= 0x7f || b >= 0xe0) continue; // fixints
    if (b <= 0x8f) {
      openContainer(b & 0x0f, true, at);
      continue;
    }
    if (b <= 0x9f) {
      openContainer(b & 0x0f, false, at);
      continue;
    }
    if (b <= 0xbf) {
      const len = b & 0x1f;
      need(len, at);
      pos += len;
      continue;
    }
    switch (b) {
      case 0xc0: // nil
      case 0xc2: // false
      case 0xc3: // true
        break;
      case 0xc4: // bin 8
      case 0xd9: {
        // str 8
        need(1, at);
        const len = bytes[pos];
        pos += 1;
        need(len, at);
        pos += len;
        break;
      }
      case 0xc5: // bin 16
      case 0xda: {
        need(2, at);
        const len = view.getUint16(pos);
        pos += 2;
        need(len, at);
        pos += len;
        break;
      }
      case 0xc6: // bin 32
      case 0xdb: {
        need(4, at);
        const len = view.getUint32(pos);
        pos += 4;
        need(len, at);
        pos += len;
        break;
      }
      case 0xcc: // uint 8
      case 0xd0: // int 8
        need(1, at);
        pos += 1;
        break;
      case 0xcd: // uint 16
      case 0xd1: // int 16
        need(2, at);
        pos += 2;
        break;
      case 0xca: // float 32
      case 0xce: // uint 32
      case 0xd2: // int 32
        need(4, at);
        pos += 4;
        break;
      case 0xcb: // float 64
        need(8, at);
        pos += 8;
        break;
      case 0xcf: {
        // uint 64
        need(8, at);
        if (view.getUint32(pos) > MAX_SAFE_HIGH) throw malformed(`uint64 at byte ${at} exceeds 2^53 - 1`);
        pos += 8;
        break;
      }
      case 0xd3: {
        // int 64
        need(8, at);
        const high = view.getInt32(pos);
        const low = view.getUint32(pos + 4);
        // -(2^53 - 1) is high = -0x200000, low = 1.
        if (high > MAX_SAFE_HIGH || high < -0x200000 || (high === -0x200000 && low === 0)) {
          throw malformed(`int64 at byte ${at} is outside ±(2^53 - 1)`);
        }
        pos += 8;
        break;
      }
      case 0xdc: {
        need(2, at);
        const n = view.getUint16(pos);
        pos += 2;
        openContainer(n, false, at);
        break;
      }
      case 0xdd: {
        need(4, at);
        const n = view.getUint32(pos);
        pos += 4;
        openContainer(n, false, at);
        break;
      }
      case 0xde: {
        need(2, at);
        const n = view.getUint16(pos);
        pos += 2;
        openContainer(n, true, at);
        break;
      }
      case 0xdf: {
        need(4, at);
        const n = view.getUint32(pos);
        pos += 4;
        openContainer(n, true, at);
        break;
      }
      default:
        // 0xc1 (never used), 0xc7-0xc9 and 0xd4-0xd8 (extension types)
        throw malformed(`type byte ${hex(b)} at byte ${at} is not allowed (extension types and 0xc1 are not part of the protocol)`);
    }
  }
  if (pos !== end) throw malformed(`trailing bytes: the value ends at byte ${pos} of ${end}`);
}
