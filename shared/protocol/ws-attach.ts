/**
 * Wires a `ws` WebSocket to a {@link SocketTransport} (structurally: shared/ does not import `ws`). Inbound
 * messages are taken as fragments (`binaryType` 'fragments'), so `ws` never joins a large message into fresh
 * memory, and collected in a {@link FragmentSink} that streams a chunk's data into its reassembly buffer as
 * each fragment arrives; outbound fragments of one message go out in one corked burst (one `writev` per message),
 * except a chunk frame's, written one by one so that each is checksummed just after the socket copied it.
 */
import { SocketTransport, type SocketTransportOptions } from './socket-transport.js';
import { CloseCode } from './close-codes.js';
import { FragmentSink } from './fragment-sink.js';
import { streamContinuationFrames } from './ws-streaming-receiver.js';
import { landReadsInPlace } from './socket-read-landing.js';

/**
 * Whether socket reads inside a chunk's data land in its reassembly buffer (./socket-read-landing.ts):
 * `SWARMTUNE_READS_IN_PLACE=0` turns it off, to compare or to rule it out.
 */
export const READS_IN_PLACE = process.env.SWARMTUNE_READS_IN_PLACE !== '0';

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

/** The part of ws's private Receiver the fragment sink relies on (checked at run time; absent: not used). */
interface ReceiverLike {
  _fragments: unknown;
  _opcode: number;
}
function receiverOf(ws: WebSocketLike): ReceiverLike | undefined {
  const receiver = (ws as { _receiver?: Partial<ReceiverLike> | null })._receiver;
  return receiver && Array.isArray(receiver._fragments) && typeof receiver._opcode === 'number' ? (receiver as ReceiverLike) : undefined;
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
      sendFragment: (bytes, fin, done) => ws.send(bytes, { binary: true, fin }, done),
      close: (code, reason) => ws.close(code, reason),
      terminate: () => ws.terminate(),
      bufferedAmount: () => ws.bufferedAmount,
    },
    options,
  );
  if ('binaryType' in ws) ws.binaryType = 'fragments';
  // ws collects each message's fragments in a list of its receiver, a fresh one per message (set before the
  // 'message' event): a FragmentSink goes in its place, only between messages (never over collected fragments).
  const receiver = ws.binaryType === 'fragments' ? receiverOf(ws) : undefined;
  const installSink = (): void => {
    const list = receiver?._fragments;
    if (receiver && Array.isArray(list) && list.length === 0 && !(list instanceof FragmentSink)) {
      receiver._fragments = transport.createFragmentSink(() => receiver._opcode === 2);
    }
  };
  installSink();
  const landing = receiver ? streamContinuationFrames(receiver, (list) => list instanceof FragmentSink && list.takesPieces) : undefined;
  if (landing && READS_IN_PLACE) landReadsInPlace((ws as { _socket?: unknown })._socket, landing);
  ws.on('message', (data, isBinary) => {
    installSink();
    if (data instanceof FragmentSink) transport.handleFragmentSink(data, isBinary);
    else transport.handleFragments(toFragments(data), isBinary);
  });
  ws.on('error', (err) => {
    const wsCode = (err as { code?: unknown }).code;
    const closeCode = typeof wsCode === 'string' && wsCode.startsWith('WS_ERR_') ? (WS_ERROR_CLOSE_CODES[wsCode] ?? 1002) : undefined;
    transport.handleError(err, closeCode);
  });
  ws.on('close', (code, reason) => transport.handleClose(code, Buffer.from(reason).toString('utf8')));
  return transport;
}
