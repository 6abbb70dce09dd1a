import { readFileSync } from 'node:fs';
import type { KoalaConfig } from '@koala/config';

/**
 * HTTPS options of the EC2 endpoint: `KOALA_API_TLS_CERT` and `KOALA_API_TLS_KEY` (PEM files)
 * both set → HTTPS; neither → plain HTTP; only one → a start-up error (never a silent
 * fallback to HTTP).
 */
export function apiHttpsOptions(config: Pick<KoalaConfig, 'apiTlsCert' | 'apiTlsKey'>): { cert: Buffer; key: Buffer } | undefined {
  const { apiTlsCert: cert, apiTlsKey: key } = config;
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new Error('KOALA_API_TLS_CERT and KOALA_API_TLS_KEY must be set together');
  return { cert: readFileSync(cert), key: readFileSync(key) };
}
