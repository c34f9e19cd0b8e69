/**
 * Two connected in-memory {@link Transport}s for tests that need a coordinator and a worker in one process
 * without sockets. Every frame is encoded, copied and parsed exactly as over a WebSocket (same
 * `SocketTransport`, same `parseMessage` gate, same close semantics), delivered asynchronously in order.
 */
import { SocketTransport, type SocketSink } from '../../shared/protocol/socket-transport.js';
import type { Transport } from '../../shared/transport.js';

/** The two ends: `coordinator` and `worker` (the names only set roles in error messages). */
export interface TransportPair {
  readonly coordinator: Transport;
  readonly worker: Transport;
  /** Drops the link without a closing handshake, as a dead network would (both ends see 1006). */
  cut(): void;
}

/** Makes a connected pair. */
export function makeTransportPair(): TransportPair {
  let coordinator!: SocketTransport;
  let worker!: SocketTransport;
  // `linkUp`: frames may still be sent; `severed`: frames in flight are lost (a cut, not an orderly close).
  let linkUp = true;
  let severed = false;

  const cut = (): void => {
    if (severed) return;
    linkUp = false;
    severed = true;
    setImmediate(() => {
      coordinator.handleClose(1006, '');
      worker.handleClose(1006, '');
    });
  };
  const sinkTo = (peer: () => SocketTransport, self: () => SocketTransport): SocketSink => ({
    send(bytes, done) {
      if (!linkUp) {
        setImmediate(() => done(new Error('link is down')));
        return;
      }
      const copy = Uint8Array.from(bytes);
      setImmediate(() => {
        if (!severed) peer().handleFrame(copy, true);
        done();
      });
    },
    close(code, reason) {
      if (!linkUp) return;
      linkUp = false;
      // The peer echoes the close frame; both ends then report the initiator's code.
      setImmediate(() => {
        peer().handleClose(code, reason);
        self().handleClose(code, reason);
      });
    },
    terminate: cut,
    bufferedAmount: () => 0,
  });

  coordinator = new SocketTransport(sinkTo(() => worker, () => coordinator), { peer: 'memory:worker', localRole: 'coordinator', peerRole: 'worker' });
  worker = new SocketTransport(sinkTo(() => coordinator, () => worker), { peer: 'memory:coordinator', localRole: 'worker', peerRole: 'coordinator' });
  return { coordinator, worker, cut };
}
