/**
 * The coordinator's Prometheus metrics over a real server on loopback: `/metrics` serves the text format from the
 * coordinator's own registry, a refused frame is counted in `rejected_messages_total{reason}` under its error code,
 * and closes that are not frame refusals (an orderly close, a plain request) are not.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Packr } from 'msgpackr';
import { createCoordinatorMetrics, frameRefusalOf } from '../../../coordinator/prometheus.js';
import { startWsServer, type WsServer } from '../../../coordinator/transport-ws.js';
import { ErrorCode } from '../../../shared/errors.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import { SUBPROTOCOL } from '../../../shared/protocol/messages.js';
import { scrapeMetrics, sumOf } from '../../helpers/prometheus-text.js';

let server: WsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(): Promise<{ url: string; metricsUrl: string }> {
  const metrics = createCoordinatorMetrics();
  server = await startWsServer({
    port: 0,
    onHttpRequest: metrics.handleHttpRequest,
    onConnection: (connection) => metrics.watchConnection(connection),
  });
  return { url: server.url, metricsUrl: `http://127.0.0.1:${server.port}/metrics` };
}

/** Sends one raw frame and resolves with the close code the server answered. */
function sendRaw(url: string, data: Uint8Array | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL, { perMessageDeflate: false });
    ws.once('open', () => ws.send(data));
    ws.once('close', (code) => resolve(code));
    ws.once('error', reject);
  });
}

describe('coordinator Prometheus metrics', () => {
  it('S8: refused frames are counted by reason in rejected_messages_total, served at /metrics', async () => {
    const { url, metricsUrl } = await serve();
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    expect(sumOf(await scrapeMetrics(metricsUrl), 'rejected_messages_total')).toBe(0);
    expect(await sendRaw(url, Uint8Array.of(0xc1))).toBe(CloseCode.INVALID_DATA);
    expect(await sendRaw(url, packr.pack({ v: 1, kind: 'stop', id: 'm-1', reason: 42 }))).toBe(CloseCode.INVALID_DATA);
    expect(await sendRaw(url, packr.pack({ v: 1, kind: 'no_such_kind', id: 'm-1' }))).toBe(CloseCode.POLICY);
    expect(await sendRaw(url, 'a text frame')).toBe(CloseCode.POLICY);
    // An honest close is not a refusal.
    const honest = new WebSocket(url, SUBPROTOCOL);
    await new Promise((resolve) => honest.once('open', resolve));
    honest.close(1000, 'bye');
    await new Promise((resolve) => honest.once('close', resolve));

    const samples = await scrapeMetrics(metricsUrl);
    expect(sumOf(samples, 'rejected_messages_total')).toBe(4);
    expect(sumOf(samples, 'rejected_messages_total', { reason: ErrorCode.PROTOCOL_MALFORMED, close_code: '1007' })).toBe(2);
    expect(sumOf(samples, 'rejected_messages_total', { reason: ErrorCode.PROTOCOL_UNKNOWN_KIND, close_code: '1008' })).toBe(1);
    expect(sumOf(samples, 'rejected_messages_total', { reason: ErrorCode.PROTOCOL_MALFORMED, close_code: '1008' })).toBe(1);
  });

  it('serves the text format content type; other plain requests still get 426', async () => {
    const { metricsUrl } = await serve();
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(await response.text()).toContain('# TYPE rejected_messages_total counter');
    expect((await fetch(metricsUrl.replace('/metrics', '/'))).status).toBe(426);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(426);
  });

  it('only closes this side initiated with a refusal code count', () => {
    const error = { code: ErrorCode.PROTOCOL_MALFORMED, message: 'x', retryable: false };
    expect(frameRefusalOf({ code: 1007, reason: '', initiatedLocally: true, error })).toEqual({ reason: ErrorCode.PROTOCOL_MALFORMED, close_code: '1007' });
    expect(frameRefusalOf({ code: 1007, reason: '', initiatedLocally: false, error })).toBeUndefined();
    expect(frameRefusalOf({ code: 1000, reason: '', initiatedLocally: true })).toBeUndefined();
    expect(frameRefusalOf({ code: 1008, reason: 'handshake refused', initiatedLocally: true })).toBeUndefined();
    expect(frameRefusalOf({ code: CloseCode.QUARANTINED, reason: '', initiatedLocally: true, error })).toBeUndefined();
  });
});
