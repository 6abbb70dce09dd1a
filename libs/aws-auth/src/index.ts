/**
 * @koala/aws-auth — verification of AWS request signatures (SigV4 header, SigV4 presigned
 * query, SigV2) and helpers for access keys stored encrypted at rest. Pure: no database, no
 * logging; the caller supplies the key lookup and the clock.
 *
 * ```ts
 * const who = await verifyRequest(
 *   { method: req.method, path: req.path, query: rawQuery, headers: req.headers, rawBody },
 *   async (id) => { const k = await keys.find(id); return k && { secret: decryptSecret(k.blob, master), active: k.active, accountId: k.accountId }; },
 *   clock.now(),
 * );
 * ```
 */
export { verifyRequest, rfc3986, safeEqual, type SignedRequest, type AccessKeyRecord, type SecretLookup, type SignatureKind, type VerifiedRequest, type VerifyOptions } from './verify.js';
export { encryptSecret, decryptSecret, generateAccessKey, isAccessKeyId } from './secrets.js';
