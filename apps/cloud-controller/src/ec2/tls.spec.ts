import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiHttpsOptions } from './tls.js';

describe('apiHttpsOptions', () => {
  it('is undefined without TLS files, reads both when set, and refuses one without the other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-tls-spec-'));
    try {
      const cert = join(dir, 'c.pem');
      const key = join(dir, 'k.pem');
      writeFileSync(cert, 'CERT');
      writeFileSync(key, 'KEY');
      expect(apiHttpsOptions({ apiTlsCert: undefined, apiTlsKey: undefined })).toBeUndefined();
      const o = apiHttpsOptions({ apiTlsCert: cert, apiTlsKey: key })!;
      expect([o.cert.toString(), o.key.toString()]).toEqual(['CERT', 'KEY']);
      expect(() => apiHttpsOptions({ apiTlsCert: cert, apiTlsKey: undefined })).toThrow(/set together/);
      expect(() => apiHttpsOptions({ apiTlsCert: undefined, apiTlsKey: key })).toThrow(/set together/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
