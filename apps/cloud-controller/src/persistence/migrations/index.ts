/**
 * Every migration, in order. Listed explicitly (no glob) so the compiled ESM build and jest
 * load the same set. Name files `<epoch-ms>-<Name>.ts` with explicit SQL in up() and down().
 */
import { Accounts1764129600000 } from './1764129600000-Accounts.js';
import { AccessKeys1764130000000 } from './1764130000000-AccessKeys.js';

export const MIGRATIONS = [Accounts1764129600000, AccessKeys1764130000000];
