/** Every TypeORM entity of the CLC, listed explicitly (see migrations/index.ts for why). */
import { AccountEntity } from '../accounts/account.entity.js';
import { AccessKeyEntity } from '../accounts/access-key.entity.js';

export const ENTITIES = [AccountEntity, AccessKeyEntity];
