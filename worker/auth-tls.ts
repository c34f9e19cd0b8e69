/**
 * Readable TLS handshake failures for a worker dialling `wss://` (RELIABILITY S15): a certificate the worker does
 * not trust (wrong CA), one for another host, an expired one, or a server that does not speak TLS at all. Each is
 * final (retrying cannot fix it) and names what to change.
 */
import { ErrorCode, OrchestratorError } from '../shared/errors.js';

/** OpenSSL / Node verification codes, and what each means for the operator. */
const TLS_FAILURES: Readonly<Record<string, string>> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the coordinator presents a self-signed certificate this worker does not trust; pass it with --ca FILE',
  SELF_SIGNED_CERT_IN_CHAIN: 'the coordinator\'s certificate chains to a root this worker does not trust; pass that CA with --ca FILE',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the coordinator\'s certificate is not signed by a CA this worker trusts; pass the right CA with --ca FILE',
  UNABLE_TO_GET_ISSUER_CERT: 'the issuer of the coordinator\'s certificate is unknown to this worker; pass the right CA with --ca FILE',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the issuer of the coordinator\'s certificate is unknown to this worker; pass the right CA with --ca FILE',
  CERT_SIGNATURE_FAILURE: 'the coordinator\'s certificate signature does not verify against the trusted CA',
  CERT_HAS_EXPIRED: 'the coordinator\'s certificate has expired',
  CERT_NOT_YET_VALID: 'the coordinator\'s certificate is not valid yet (check the clocks)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the coordinator\'s certificate is for another host name or address than the one dialled',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the coordinator does not speak TLS on this port; dial ws:// instead of wss://',
};

/**
 * An `E_TLS_FAILED` error for a TLS handshake failure, or undefined when `err` is not one.
 */
export function describeTlsFailure(err: Error, url: string): OrchestratorError | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  // A plain server answering a ClientHello surfaces as EPROTO "wrong version number" rather than its own code.
  const meaning = code !== undefined ? (TLS_FAILURES[code] ?? (/wrong version number/i.test(err.message) ? TLS_FAILURES.ERR_SSL_WRONG_VERSION_NUMBER : undefined)) : undefined;
  const isTls = meaning !== undefined || (code?.startsWith('ERR_SSL_') ?? false) || (code === 'EPROTO' && /ssl|tls/i.test(err.message));
  if (!isTls) return undefined;
  return new OrchestratorError(ErrorCode.TLS_FAILED, `TLS handshake with the coordinator at ${url} failed: ${meaning ?? err.message} (${code}: ${err.message})`, { cause: err });
}
