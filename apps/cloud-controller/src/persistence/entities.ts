/** Every TypeORM entity of the CLC, listed explicitly (see migrations/index.ts for why). */
import { AccountEntity } from '../accounts/account.entity.js';

export const ENTITIES = [AccountEntity];
