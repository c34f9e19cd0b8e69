/**
 * Authentication and TLS end to end (RELIABILITY S15): a coordinator run with `auth` and `wss://` trains with
 * workers that hold the credentials and trust its certificate, while intruders (no token, wrong token) are refused
 * in the upgrade and counted; a worker that trusts the wrong CA fails the TLS handshake with a readable error; the
 * worker program exits non-zero at once on a 401. Certificates are generated at test time with openssl.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator } from '../../coordinator/run.js';
import { createAuthenticator } from '../../coordinator/auth.js';
import { startWsServer } from '../../coordinator/transport-ws.js';
import { ErrorCode, OrchestratorError } from '../../shared/errors.js';
import { ExitCode } from '../../shared/exit-codes.js';
import { TSX_IMPORT_URL } from '../../shared/tsx-loader.js';
import type { ClientCredentials } from '../../worker/auth-credentials.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry, connectWs } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { makeTlsFixture, type TlsFixture } from '../helpers/tls-certs.js';

const TOKEN = 'run-token-0123456789abcdef-0123456789';
const WORKER_CLI = join(import.meta.dirname, '..', '..', 'worker', 'cli.ts');

let fixture: DpFixture;
let tls: TlsFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  tls = makeTlsFixture();
  backend = await selectBackend('auto');
});

async function expectCode(promise: Promise<unknown>, code: string): Promise<OrchestratorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OrchestratorError);
  expect((err as OrchestratorError).code).toBe(code);
  return err as OrchestratorError;
}

/** Runs `config` with two in-process workers holding `credentials`, and tries `intruders` while it waits for them. */
async function runWithAuth(config: ReturnType<typeof dpConfig>, credentials: ClientCredentials, ca: Buffer | undefined, intruders: (url: string) => Promise<void>): Promise<{ steps: number; outcomes: WorkerOutcome[] }> {
  const sessions: Promise<WorkerOutcome>[] = [];
  let intrusion: Promise<void> = Promise.resolve();
  const result = await runCoordinator(config, {
    log: () => undefined,
    onListening: async (url) => {
      // The intruders go first, so they are refused while the run still waits for workers.
      intrusion = intruders(url);
      await intrusion;
      for (let i = 0; i < 2; i++) sessions.push(connectWithRetry(url, { credentials, ca }).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
    },
  });
  await intrusion;
  return { steps: result.steps, outcomes: await Promise.all(sessions) };
}

function metricsOf(config: ReturnType<typeof dpConfig>): Record<string, unknown>[] {
  return readFileSync(join(config.output_dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('an authenticated run', () => {
  it('S15: over wss:// with a token file, workers with the token and the CA train; intruders get 401 and are counted; the token is not saved', async () => {
    const tokenFile = join(fixture.dir, 'run.token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const config = dpConfig(fixture, 2, { max_steps: 2, auth: 'token', auth_token_file: tokenFile, tls_cert: tls.certPath, tls_key: tls.keyPath });
    const ca = readFileSync(tls.certPath);
    const { steps, outcomes } = await runWithAuth(config, { scheme: 'bearer', token: TOKEN }, ca, async (url) => {
      expect(url.startsWith('wss://')).toBe(true);
      await expectCode(connectWs(url, { ca }), ErrorCode.AUTH_FAILED);
      const wrong = await expectCode(connectWs(url, { ca, credentials: { scheme: 'bearer', token: 'guessed-token-guessed-token' } }), ErrorCode.AUTH_FAILED);
      expect(wrong.message).toContain('bad_token');
      // Right token, untrusted certificate: the handshake fails before the token is even sent.
      const untrusted = await expectCode(connectWs(url, { credentials: { scheme: 'bearer', token: TOKEN }, ca: readFileSync(tls.wrongCaPath) }), ErrorCode.TLS_FAILED);
      expect(untrusted.message).toContain('--ca');
    });
    expect(steps).toBe(2);
    expect(outcomes.map((o) => o.kind)).toEqual(['stopped', 'stopped']);
    const rejected = metricsOf(config).filter((r) => r.event === 'auth_rejected');
    expect(rejected.map((r) => r.reason).sort()).toEqual(['bad_token', 'missing']);
    const saved = readFileSync(join(config.output_dir, 'run_config.json'), 'utf8');
    expect(saved).not.toContain(TOKEN);
    expect(JSON.parse(saved).auth).toBe('token');
  });

  it('S15: with signed requests (hmac), workers holding a key train; an unknown key and a wrong secret are refused', async () => {
    const keysFile = join(fixture.dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ 'worker-a': 'secret-a-0123456789abcdef', 'worker-b': 'secret-b-0123456789abcdef' }));
    const config = dpConfig(fixture, 2, { max_steps: 2, auth: 'hmac', auth_keys_file: keysFile });
    const { steps } = await runWithAuth(config, { scheme: 'hmac', keyId: 'worker-b', secret: 'secret-b-0123456789abcdef' }, undefined, async (url) => {
      await expectCode(connectWs(url, { credentials: { scheme: 'hmac', keyId: 'worker-c', secret: 'secret-b-0123456789abcdef' } }), ErrorCode.AUTH_FAILED);
      await expectCode(connectWs(url, { credentials: { scheme: 'hmac', keyId: 'worker-a', secret: 'secret-b-0123456789abcdef' } }), ErrorCode.AUTH_FAILED);
    });
    expect(steps).toBe(2);
    const rejected = metricsOf(config).filter((r) => r.event === 'auth_rejected');
    expect(rejected.map((r) => r.reason).sort()).toEqual(['bad_signature', 'unknown_key']);
  });
});

describe('TLS handshakes', () => {
  it('S15: the right CA connects; a wrong CA, the system store (self-signed) and wss:// to a plain server fail with E_TLS_FAILED', async () => {
    const secure = await startWsServer({ port: 0, tls: { cert: readFileSync(tls.certPath), key: readFileSync(tls.keyPath) }, authenticator: createAuthenticator({ mode: 'none' }), onConnection: () => undefined });
    const plain = await startWsServer({ port: 0, onConnection: () => undefined });
    try {
      expect(secure.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      const ok = await connectWs(secure.url, { ca: readFileSync(tls.certPath) });
      ok.close();
      const wrong = await expectCode(connectWs(secure.url, { ca: readFileSync(tls.wrongCaPath), reconnect: { maxAttempts: 3, initialDelayMs: 1 } }), ErrorCode.TLS_FAILED);
      expect(wrong.message).toContain('TLS handshake');
      await expectCode(connectWs(secure.url), ErrorCode.TLS_FAILED);
      const notTls = await expectCode(connectWs(plain.url.replace('ws://', 'wss://')), ErrorCode.TLS_FAILED);
      expect(notTls.message).toContain('does not speak TLS');
    } finally {
      await Promise.all([secure.close(), plain.close()]);
    }
  });
});

describe('the worker program', () => {
  function runWorker(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', TSX_IMPORT_URL, WORKER_CLI, 'worker', '--backend', 'cpu', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
  }

  it('S15: exits with the connection code and a clear message on a 401 (no retry loop) and on a wrong CA', async () => {
    const server = await startWsServer({ port: 0, tls: { cert: readFileSync(tls.certPath), key: readFileSync(tls.keyPath) }, authenticator: createAuthenticator({ mode: 'token', token: TOKEN }), onConnection: () => undefined });
    try {
      const [badToken, badCa] = await Promise.all([
        runWorker(['--connect', server.url, '--ca', tls.certPath], { SWARMTUNE_AUTH_TOKEN: 'wrong-token-wrong-token' }),
        runWorker(['--connect', server.url, '--ca', tls.wrongCaPath, '--token', TOKEN]),
      ]);
      expect(badToken.code).toBe(ExitCode.CONNECTION);
      expect(badToken.stderr).toContain('E_AUTH_FAILED');
      expect(badToken.stderr).toContain('HTTP 401');
      expect(badToken.stderr).not.toContain('gave up after');
      expect(badCa.code).toBe(ExitCode.CONNECTION);
      expect(badCa.stderr).toContain('E_TLS_FAILED');
    } finally {
      await server.close();
    }
  });
});
