/**
 * Wires a `ws` WebSocket to a {@link SocketTransport} (structurally: shared/ does not import `ws`). Inbound
 * messages are taken as fragments (`binaryType` 'fragments'), so `ws` never joins a large message into fresh
 * memory; outbound fragments of one message go out in one corked burst (one `writev` per message).
 */
import { SocketTransport, type SocketTransportOptions } from './socket-transport.js';
import { CloseCode } from './close-codes.js';

/** The `ws` WebSocket surface {@link attachWebSocket} uses (structural, so shared/ needs no `ws` import). */
export interface WebSocketLike {
  readonly bufferedAmount: number;
  /** Set to 'fragments' by {@link attachWebSocket} when present. */
  binaryType?: string;
  send(data: Uint8Array, cb: (err?: Error) => void): void;
  send(data: Uint8Array, options: { binary: boolean; fin: boolean }, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Uint8Array) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** ws error codes that mean the peer broke WebSocket framing, with the close code ws answers them with. */
const WS_ERROR_CLOSE_CODES: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_DATA,
};

function toFragments(data: unknown): readonly Uint8Array[] {
  if (Array.isArray(data)) return data as Uint8Array[];
  if (data instanceof Uint8Array) return [data];
  if (data instanceof ArrayBuffer) return [new Uint8Array(data)];
  return [];
}

/** ws keeps its net.Socket in a private field; corking it around a burst of fragments makes one writev. */
interface Corkable {
  cork(): void;
  uncork(): void;
}
function socketOf(ws: WebSocketLike): Corkable | undefined {
  const socket = (ws as { _socket?: Partial<Corkable> })._socket;
  return typeof socket?.cork === 'function' && typeof socket.uncork === 'function' ? (socket as Corkable) : undefined;
}

/**
 * Wraps an open `ws` WebSocket as a {@link SocketTransport}, listening to its `message`, `error` and `close`
 * events (an `error` listener is always attached, so a socket error never crashes the process).
 */
export function attachWebSocket(ws: WebSocketLike, options: SocketTransportOptions): SocketTransport {
  const transport = new SocketTransport(
    {
      send: (bytes, done) => ws.send(bytes, done),
      sendFragments: (parts, done) => {
        const socket = socketOf(ws);
        socket?.cork();
        try {
          const last = parts.length - 1;
          for (let i = 0; i < last; i++) ws.send(parts[i], { binary: true, fin: false });
          ws.send(parts[last], { binary: true, fin: true }, done);
        } finally {
          socket?.uncork();
        }
      },
      close: (code, reason) => ws.close(code, reason),
      terminate: () => ws.terminate(),
      bufferedAmount: () => ws.bufferedAmount,
    },
    options,
  );
  if ('binaryType' in ws) ws.binaryType = 'fragments';
  ws.on('message', (data, isBinary) => transport.handleFragments(toFragments(data), isBinary));
  ws.on('error', (err) => {
    const wsCode = (err as { code?: unknown }).code;
    const closeCode = typeof wsCode === 'string' && wsCode.startsWith('WS_ERR_') ? (WS_ERROR_CLOSE_CODES[wsCode] ?? 1002) : undefined;
    transport.handleError(err, closeCode);
  });
  ws.on('close', (code, reason) => transport.handleClose(code, Buffer.from(reason).toString('utf8')));
  return transport;
}
