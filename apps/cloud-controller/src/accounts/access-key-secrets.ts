import { decryptSecret, encryptSecret } from '@koala/aws-auth';

/**
 * Port: how access key secrets are sealed at rest. The auth module binds it to the master key
 * (`masterKeySecrets`); tests use any reversible stand-in. Keeping the key out of this folder is
 * what lets accounts/ not import auth/ (auth depends on accounts, never the reverse).
 */
export interface AccessKeySecrets {
  encrypt(secret: string): string;
  decrypt(blob: string): string;
}
export const ACCESS_KEY_SECRETS = Symbol('ACCESS_KEY_SECRETS');

/** Secrets sealed with the master key (`encryptSecret`); decrypted blobs are remembered (blobs never change). */
export function masterKeySecrets(masterKey: string): AccessKeySecrets {
  const decrypted = new Map<string, string>();
  return {
    encrypt: (secret) => encryptSecret(secret, masterKey),
    decrypt(blob) {
      let s = decrypted.get(blob);
      if (s === undefined) {
        s = decryptSecret(blob, masterKey);
        if (decrypted.size > 10_000) decrypted.clear();
        decrypted.set(blob, s);
      }
      return s;
    },
  };
}
