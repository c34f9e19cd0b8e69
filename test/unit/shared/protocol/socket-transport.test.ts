import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../../../shared/codec.js';
import { ErrorCode, OrchestratorError } from '../../../../shared/errors.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import { CloseCode, MAX_CLOSE_REASON_BYTES, truncateCloseReason } from '../../../../shared/protocol/close-codes.js';
import type { Message } from '../../../../shared/protocol/messages.js';
import { parseMessage } from '../../../../shared/protocol/parse.js';
import { SocketTransport, type SocketSink } from '../../../../shared/protocol/socket-transport.js';
import { describeClose } from '../../../../shared/transport.js';
import { makeTransportPair } from '../../../helpers/transport-pair.js';
import { sampleList, sampleMessages } from '../../../fixtures/frames/samples.js';

/** A sink that records what the transport does, with a settable send buffer. */
function recordingSink() {
  const sent: Uint8Array[] = [];
  const pending: ((err?: Error) => void)[] = [];
  const closes: { code: number; reason: string }[] = [];
  let buffered = 0;
  let terminated = false;
  const sink: SocketSink = {
    send(bytes, done) {
      sent.push(bytes);
      pending.push(done);
    },
    close: (code, reason) => closes.push({ code, reason }),
    terminate: () => (terminated = true),
    bufferedAmount: () => buffered,
  };
  return {
    sink,
    sent,
    pending,
    closes,
    setBuffered: (n: number) => (buffered = n),
    wasTerminated: () => terminated,
  };
}

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
}

describe('SocketTransport', () => {
  it('carries every kind through the in-memory pair', async () => {
    const { coordinator, worker } = makeTransportPair();
    const received: Message[] = [];
    const all = new Promise<void>((resolve) =>
      coordinator.onMessage((m) => {
        received.push(m);
        if (received.length === sampleList().length) resolve();
      }),
    );
    for (const msg of sampleList()) await worker.send(msg);
    await all;
    expect(received).toEqual(sampleList());
  });

  it('queues frames that arrive before a handler and delivers them in order', async () => {
    const rec = recordingSink();
    const t = new SocketTransport(rec.sink, { peer: 'test' });
    const frames = sampleList().slice(0, 3);
    for (const f of frames) t.handleFrame(encodeMessage(f), true);
    const got: string[] = [];
    await new Promise<void>((resolve) =>
      t.onMessage((m) => {
        got.push(m.kind);
        if (got.length === 3) resolve();
      }),
    );
    expect(got).toEqual(frames.map((f) => f.kind));
  });

  it('waits for the OS only when the send buffer is over the high-water mark', async () => {
    const rec = recordingSink();
    const t = new SocketTransport(rec.sink, { peer: 'test', highWaterMarkBytes: 100 });
    expect(await settled(t.send(sampleMessages().stop))).toBe(true);

    rec.setBuffered(1000);
    const slow = t.send(sampleMessages().stop);
    expect(await settled(slow)).toBe(false);
    rec.pending[1]();
    expect(await settled(slow)).toBe(true);

    const failed = t.send(sampleMessages().stop);
    rec.pending[2](new Error('EPIPE'));
    await expect(failed).rejects.toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
  });

  it('rejects waiting and later sends once closed', async () => {
    const rec = recordingSink();
    const t = new SocketTransport(rec.sink, { peer: 'test', highWaterMarkBytes: 0 });
    rec.setBuffered(1);
    const waiting = t.send(sampleMessages().stop);
    t.handleClose(1006, '');
    await expect(waiting).rejects.toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
    await expect(t.send(sampleMessages().stop)).rejects.toBeInstanceOf(OrchestratorError);
    expect(t.isOpen).toBe(false);
  });

  it('answers a malformed frame with an error frame quoting its id, then closes 1007', async () => {
    const rec = recordingSink();
    const t = new SocketTransport(rec.sink, { peer: 'test', localRole: 'coordinator', peerRole: 'worker' });
    const bad = encodeMessage({ ...sampleMessages().grad_result, step: -1 } as Message);
    t.handleFrame(bad, true);
    const reply = parseMessage(rec.sent[0]);
    expect(reply).toMatchObject({ kind: 'error', code: ErrorCode.PROTOCOL_MALFORMED, replyTo: 'msg-gradres-0001', retryable: false });
    expect(rec.closes).toEqual([{ code: CloseCode.INVALID_DATA, reason: expect.stringMatching(/step/) }]);
    t.handleClose(1007, '');
    const event = await t.closed;
    expect(event).toMatchObject({ code: 1007, initiatedLocally: true, error: { code: ErrorCode.PROTOCOL_MALFORMED } });
  });

  it('refuses text frames and unknown kinds with 1008, version mismatches with 4001', () => {
    const text = recordingSink();
    new SocketTransport(text.sink, { peer: 't' }).handleFrame(Buffer.from('{"v":1}'), false);
    expect(text.closes[0].code).toBe(CloseCode.POLICY);

    const unknown = recordingSink();
    new SocketTransport(unknown.sink, { peer: 't' }).handleFrame(encodeMessage({ v: 1, kind: 'train_request', id: 'x' } as unknown as Message), true);
    expect(unknown.closes[0].code).toBe(CloseCode.POLICY);
    expect(parseMessage(unknown.sent[0])).toMatchObject({ code: ErrorCode.PROTOCOL_UNKNOWN_KIND });

    const v2 = recordingSink();
    new SocketTransport(v2.sink, { peer: 't', localRole: 'worker', peerRole: 'coordinator' }).handleFrame(
      encodeMessage({ ...sampleMessages().stop, v: 2 } as unknown as Message),
      true,
    );
    expect(v2.closes[0].code).toBe(CloseCode.VERSION_MISMATCH);
    expect(parseMessage(v2.sent[0])).toMatchObject({
      code: ErrorCode.PROTOCOL_VERSION,
      message: 'protocol version mismatch: worker speaks v1, coordinator sent v2',
    });
  });

  it('reports the error frame that preceded a close by the peer', async () => {
    const { coordinator, worker } = makeTransportPair();
    const error = makeMessage('error', { code: 'E_MODEL_MISMATCH', message: 'model hash differs', retryable: false });
    await coordinator.send(error);
    coordinator.close(CloseCode.POLICY, 'model mismatch');
    const event = await worker.closed;
    expect(event).toMatchObject({ code: CloseCode.POLICY, initiatedLocally: false, error: { code: 'E_MODEL_MISMATCH', message: 'model hash differs' } });
    expect(describeClose(event)).toMatch(/1008 by peer: E_MODEL_MISMATCH model hash differs/);
  });

  it('closes 1011 when a message handler throws, without throwing into the socket', async () => {
    const { coordinator, worker } = makeTransportPair();
    coordinator.onMessage(() => {
      throw new Error('handler bug');
    });
    await worker.send(sampleMessages().hello);
    const [local, remote] = await Promise.all([coordinator.closed, worker.closed]);
    expect(local).toMatchObject({ code: CloseCode.INTERNAL, initiatedLocally: true, error: { message: expect.stringMatching(/handler bug/) } });
    expect(remote.code).toBe(CloseCode.INTERNAL);
  });

  it('calls a close handler registered after the close', async () => {
    const { coordinator, worker } = makeTransportPair();
    worker.close();
    await coordinator.closed;
    const event = await new Promise((resolve) => coordinator.onClose(resolve));
    expect(event).toMatchObject({ code: 1000, initiatedLocally: false });
  });

  it('truncates long close reasons to 123 bytes on a character boundary', () => {
    const reason = truncateCloseReason('é'.repeat(200));
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    expect(reason.endsWith('...')).toBe(true);
    const rec = recordingSink();
    new SocketTransport(rec.sink, { peer: 't' }).close(1000, 'x'.repeat(500));
    expect(Buffer.byteLength(rec.closes[0].reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
  });

  it('delivers in order under a burst (pair)', async () => {
    const { coordinator, worker } = makeTransportPair();
    const n = 200;
    const seen: number[] = [];
    const done = new Promise<void>((resolve) =>
      coordinator.onMessage((m) => {
        if (m.kind === 'grad_request') seen.push(m.step);
        if (seen.length === n) resolve();
      }),
    );
    const base = sampleMessages().grad_request;
    await Promise.all(Array.from({ length: n }, (_, step) => worker.send({ ...base, step })));
    await done;
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
