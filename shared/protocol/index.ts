/** The wire protocol's public surface: frame types, the parse gate, builders, batch helpers, close codes, transport. */
export {
  MSG_KINDS,
  MsgKind,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  TENSOR_CODECS,
  TENSOR_DTYPES,
  isMsgKind,
  type BackendReport,
  type ErrorFrame,
  type EvalRequest,
  type EvalResult,
  type GradRequest,
  type GradResult,
  type Hello,
  type Message,
  type MessageBody,
  type MessageOf,
  type ModelRef,
  type Ready,
  type Stop,
  type TensorBlob,
  type TensorCodec,
  type TensorDtype,
  type Welcome,
  type WireBatch,
  type WireStats,
  type WorkerCapabilities,
} from './messages.js';
export { MAX_STRING_LENGTH, MAX_TENSOR_RANK, ProtocolVersionError, expectKind, parseMessage, tryParseMessage, type ParseResult } from './parse.js';
export { MAX_FRAME_DEPTH, scanFrame } from './frame-scan.js';
export { makeErrorFrame, makeMessage, makeReply } from './build.js';
export { batchToWire, wireToBatch } from './batch.js';
export { CloseCode, MAX_CLOSE_REASON_BYTES, closeCodeForError, isReconnectable, truncateCloseReason } from './close-codes.js';
export {
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_QUEUED_MESSAGES,
  SocketTransport,
  attachWebSocket,
  type SocketSink,
  type SocketTransportOptions,
  type WebSocketLike,
} from './socket-transport.js';
