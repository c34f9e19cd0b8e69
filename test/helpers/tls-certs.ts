/**
 * Self-signed TLS material made at test time with the openssl CLI (never committed): a certificate for 127.0.0.1
 * and localhost with its key, and an unrelated self-signed certificate to play the wrong CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Paths of the generated PEM files. */
export interface TlsFixture {
  readonly dir: string;
  /** The server certificate; self-signed, so it is also the CA a worker must trust. */
  readonly certPath: string;
  readonly keyPath: string;
  /** Another self-signed certificate: trusting it instead of `certPath` must fail the handshake. */
  readonly wrongCaPath: string;
}

function selfSigned(dir: string, name: string, subject: string): { certPath: string; keyPath: string } {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', subject,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe' });
  return { certPath, keyPath };
}

/** Generates a fresh {@link TlsFixture} in a temporary folder. @throws Error when openssl is not installed. */
export function makeTlsFixture(): TlsFixture {
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-tls-'));
  const server = selfSigned(dir, 'server', '/CN=swarmtune test coordinator');
  const wrong = selfSigned(dir, 'wrong-ca', '/CN=swarmtune wrong CA');
  return { dir, certPath: server.certPath, keyPath: server.keyPath, wrongCaPath: wrong.certPath };
}
