import { createHash } from 'node:crypto';

/** Koala has no IAM users: the caller acts as its account's `admin` user (Eucalyptus' convention). */
export const ACCOUNT_USER = 'admin';

export interface CallerIdentity {
  account: string;
  userName: string;
  /** Stable, AWS-shaped user id (`AIDA` + 16 characters) derived from the account id. */
  userId: string;
  arn: string;
}

export function callerIdentity(accountId: string): CallerIdentity {
  const digest = createHash('sha256').update(`koala-user:${accountId}/${ACCOUNT_USER}`).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const userId = 'AIDA' + [...digest.subarray(0, 16)].map((b) => alphabet[b & 31]).join('');
  return { account: accountId, userName: ACCOUNT_USER, userId, arn: `arn:aws:iam::${accountId}:user/${ACCOUNT_USER}` };
}
