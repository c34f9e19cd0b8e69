/**
 * WebSocket close codes swarmtune uses, in one table (RFC 6455 §7.4; 4000–4999 are ours).
 *
 * | code | name                | sent when                                                                 | reconnect? |
 * |------|---------------------|---------------------------------------------------------------------------|------------|
 * | 1000 | NORMAL              | orderly end (after `stop`, or a local `close()`)                           | no         |
 * | 1001 | GOING_AWAY          | the coordinator shuts down                                                 | yes        |
 * | 1006 | ABNORMAL            | (never sent) the TCP connection dropped without a close frame             | yes        |
 * | 1007 | INVALID_DATA        | a frame failed `parseMessage` (bad msgpack, missing/ill-typed field)      | no         |
 * | 1008 | POLICY              | a frame is well-formed but not allowed (unknown kind, text frame, forbidden key) | no  |
 * | 1009 | TOO_BIG             | a frame exceeded `maxPayloadBytes` (set by ws)                             | no         |
 * | 1011 | INTERNAL            | a local handler threw while processing a frame                             | yes        |
 * | 4001 | VERSION_MISMATCH    | a frame's `v` is not this side's protocol version                          | no         |
 * | 4002 | HEARTBEAT_TIMEOUT   | (local only, never on the wire) no pong / no ping within the deadline: the link was terminated | yes |
 * | 4003 | UNEXPECTED          | a frame kind not valid at this point of the conversation (for session logic) | no      |
 * | 4004 | STEP_TIMEOUT        | a worker did not answer a step within `step_timeout_ms`; its work went to others | yes  |
 * | 4005 | SEND_STALLED        | (local only) the peer stopped reading: a send waited past `sendStallTimeoutMs` or the queue cap | yes |
 * | 4006 | QUARANTINED         | the worker's results were rejected at the gate `quarantine_strikes` times; its id is refused for the run | no |
 * | 4007 | REPLACED            | a new connection hello'd under this session's worker id: the new one replaces it | no |
 * | 4409 | ID_CONFLICT         | hello'd under a live worker's id with another authentication key (S14); the live one is untouched | no |
 *
 * Reserved for later issues: 4010 unauthorized (authentication in the upgrade).
 */
import { ErrorCode } from '../errors.js';

/** Close codes by name. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  VERSION_MISMATCH: 4001,
  HEARTBEAT_TIMEOUT: 4002,
  UNEXPECTED: 4003,
  STEP_TIMEOUT: 4004,
  SEND_STALLED: 4005,
  QUARANTINED: 4006,
  REPLACED: 4007,
  ID_CONFLICT: 4409,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The close code for a frame refused with error `code`. */
export function closeCodeForError(code: string): CloseCode {
  switch (code) {
    case ErrorCode.PROTOCOL_VERSION:
      return CloseCode.VERSION_MISMATCH;
    case ErrorCode.PROTOCOL_UNKNOWN_KIND:
    case ErrorCode.PROTOCOL_FORBIDDEN_KEY:
      return CloseCode.POLICY;
    case ErrorCode.PROTOCOL_UNEXPECTED:
      return CloseCode.UNEXPECTED;
    default:
      return CloseCode.INVALID_DATA;
  }
}

/** Whether a connection closed with `code` is worth dialling again (see the table above). */
export function isReconnectable(code: number): boolean {
  return (
    code === CloseCode.GOING_AWAY ||
    code === CloseCode.ABNORMAL ||
    code === CloseCode.INTERNAL ||
    code === CloseCode.HEARTBEAT_TIMEOUT ||
    code === CloseCode.SEND_STALLED
  );
}

/** Largest close reason the WebSocket protocol allows, in bytes of UTF-8. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** `reason` cut to at most {@link MAX_CLOSE_REASON_BYTES} bytes of UTF-8, on a character boundary. */
export function truncateCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_CLOSE_REASON_BYTES - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}
