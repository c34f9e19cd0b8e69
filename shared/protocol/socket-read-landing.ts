/**
 * Socket reads that land where their bytes belong. Node reads a socket into a fresh 64 KiB buffer per read and
 * hands it to 'data' listeners; for a chunk's data the receiver then copies each read into the transfer's
 * reassembly buffer (./fragment-sink.ts). Here, while a chunk's data is being streamed, the kernel copies the
 * next read straight into the reassembly buffer (as much as the socket holds, up to the frame's end), and the
 * receiver only checksums it there, still in cache: one copy of every byte fewer, far fewer reads, no fresh
 * memory. Measured on this machine (`npm run bench:wire`, 10 MB round trips): raw TCP reading in place
 * (`tcp_in_place`) runs 1.6-1.8x as fast as raw TCP copying Node's 'data' reads into a reused buffer (`tcp`);
 * the full ws stack went from 0.63-0.80 of `tcp` to 1.05-1.11 with this.
 *
 * Every other read goes into a read buffer of this module's and is emitted as 'data', as Node would: `ws` and
 * any other listener see the same bytes in the same order. This uses Node's `onread` mechanism (a socket
 * created with `onread` reads into the buffer its function returns), which `net` offers only to sockets it
 * creates, not to those a server accepts; it is installed on an open socket through the socket's own symbols
 * and its handle's `useUserBuffer`, checked at run time. Where any of that is missing (another Node, a TLS
 * socket, data already buffered in the stream), nothing is changed: correct, only slower.
 */

/** Where a socket's next read may land, and what takes the bytes when it did (./ws-streaming-receiver.ts). */
export interface ReadLanding {
  /** Memory the next read may fill directly, or undefined: the read is ordinary data. */
  next(): Uint8Array | undefined;
  /**
   * Takes the first `n` bytes of `view` (the last {@link next}), which a read just filled. False: they were
   * not taken (the receiver's state changed), and are delivered as ordinary data instead.
   */
  landed(view: Uint8Array, n: number): boolean;
}

/** Node's own read size for a socket. */
const READ_BUFFER_BYTES = 64 * 1024;
/** Reads up to this size are copied out of the read buffer, which is then reused; longer ones keep it. */
const COPY_OUT_MAX_BYTES = 4 * 1024;

/** The private surface of a Node 20 `net.Socket` this relies on. */
interface UserBufferSocket {
  readonly readableLength: number;
  readonly encrypted?: boolean;
  readonly destroyed: boolean;
  _handle: { useUserBuffer?: (buffer: Uint8Array) => void } | null;
  emit(event: 'data', chunk: Buffer): boolean;
  [key: symbol]: unknown;
}

function ownSymbol(target: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(target).find((s) => s.description === description);
}

/**
 * Makes `socket` (an open, plain `net.Socket` whose 'data' listeners are all its reader has) read into
 * `landing.next()` whenever that gives memory. Returns whether it could (false: the socket is left as it was).
 */
export function landReadsInPlace(socket: unknown, landing: ReadLanding): boolean {
  if (typeof socket !== 'object' || socket === null) return false;
  const s = socket as UserBufferSocket;
  const kBuffer = ownSymbol(s, 'kBuffer');
  const kBufferCb = ownSymbol(s, 'kBufferCb');
  const kBufferGen = ownSymbol(s, 'kBufferGen');
  const handle = s._handle;
  // A socket made without `onread` holds null in all three (anything else: another Node, or already reading
  // into user memory). Bytes already in the stream's buffer would be emitted after reads taken here: order first.
  if (!kBuffer || !kBufferCb || !kBufferGen || s[kBuffer] !== null || s[kBufferCb] !== null || s[kBufferGen] !== null) return false;
  if (s.encrypted || s.destroyed || s.readableLength !== 0) return false;
  if (typeof handle?.useUserBuffer !== 'function') return false;

  let readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let lent: Uint8Array | undefined;
  const nextBuffer = (): Uint8Array => {
    lent = landing.next();
    return lent ?? readBuffer;
  };
  const onRead = (n: number, filled: Uint8Array): boolean => {
    if (filled === lent && landing.landed(filled, n)) return true;
    let chunk: Buffer;
    if (filled !== readBuffer) {
      // Lent memory the receiver did not take: its bytes are the stream's all the same.
      chunk = Buffer.from(filled.subarray(0, n));
    } else if (n <= COPY_OUT_MAX_BYTES) {
      chunk = Buffer.from(readBuffer.subarray(0, n));
    } else {
      // Listeners may keep views of it (ws does, of frames it has not parsed yet): a new one for the next read.
      chunk = readBuffer.subarray(0, n);
      readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    }
    s.emit('data', chunk);
    return true;
  };
  s[kBufferCb] = onRead;
  s[kBufferGen] = nextBuffer;
  s[kBuffer] = nextBuffer();
  handle.useUserBuffer(s[kBuffer] as Uint8Array);
  return true;
}
