/**
 * The worker's frames go out with a zero mask unless `maskFrames` is set: checked on the raw bytes a plain
 * TCP server receives after answering the WebSocket upgrade by hand.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SUBPROTOCOL } from '../../../shared/protocol/messages.js';
import { connectWs } from '../../../worker/transport-ws.js';
import { sampleMessages } from '../../fixtures/frames/samples.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server that accepts one upgrade and resolves with the 4 mask bytes of the first client frame. */
async function maskOfFirstFrame(): Promise<{ url: string; mask: Promise<Buffer> }> {
  let resolveMask!: (m: Buffer) => void;
  const mask = new Promise<Buffer>((r) => (resolveMask = r));
  const server = createServer((socket: Socket) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /sec-websocket-key: (.+)\r\n/i.exec(buf.subarray(0, end).toString())![1].trim();
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`);
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      if (buf.length < 2) return;
      expect(buf[1] & 0x80).toBe(0x80); // the mask bit is always set on client frames
      const len = buf[1] & 0x7f;
      const at = len === 126 ? 4 : len === 127 ? 10 : 2;
      if (buf.length >= at + 4) {
        resolveMask(Buffer.from(buf.subarray(at, at + 4)));
        socket.destroy();
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`, mask };
}

describe('worker frame masking', () => {
  it('sends a zero mask by default (payload unchanged, no per-byte masking)', async () => {
    const { url, mask } = await maskOfFirstFrame();
    const t = await connectWs(url, { pingTimeoutMs: 0 });
    void t.send(sampleMessages().stop).catch(() => {});
    expect([...(await mask)]).toEqual([0, 0, 0, 0]);
  });

  it('masks with a random key when maskFrames is set', async () => {
    const { url, mask } = await maskOfFirstFrame();
    const t = await connectWs(url, { pingTimeoutMs: 0, maskFrames: true });
    void t.send(sampleMessages().stop).catch(() => {});
    expect([...(await mask)]).not.toEqual([0, 0, 0, 0]);
  });
});
