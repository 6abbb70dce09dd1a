/**
 * Every migration, in order. Listed explicitly (no glob) so the compiled ESM build and jest
 * load the same set. Name files `<epoch-ms>-<Name>.ts` with explicit SQL in up() and down().
 */
import { Accounts1764129600000 } from './1764129600000-Accounts.js';
import { AccessKeys1764130000000 } from './1764130000000-AccessKeys.js';

export const MIGRATIONS = [Accounts1764129600000, AccessKeys1764130000000];

// Resources that need no hypervisor (tags, key pairs, security groups, addresses).
import { Tags1764131000000 } from './1764131000000-Tags.js';
import { KeyPairs1764131100000 } from './1764131100000-KeyPairs.js';
import { SecurityGroups1764131200000 } from './1764131200000-SecurityGroups.js';
import { Addresses1764131300000 } from './1764131300000-Addresses.js';

(MIGRATIONS as Function[]).push(Tags1764131000000, KeyPairs1764131100000, SecurityGroups1764131200000, Addresses1764131300000);

// Images (emi/eki/eri).
import { Images1764133000000 } from './1764133000000-Images.js';

(MIGRATIONS as Function[]).push(Images1764133000000);

// Instances.
import { Instances1764132000000 } from './1764132000000-Instances.js';

(MIGRATIONS as Function[]).push(Instances1764132000000);

// Volumes and snapshots.
import { Volumes1764134000000 } from './1764134000000-Volumes.js';

(MIGRATIONS as Function[]).push(Volumes1764134000000);

// RunInstances' block-device mappings (volumes created and attached for new instances).
import { InstanceBlockDevices1764135000000 } from './1764135000000-InstanceBlockDevices.js';

(MIGRATIONS as Function[]).push(InstanceBlockDevices1764135000000);

// RegisterImage: the full ImageLocation (credentials, query) sealed while the fetch runs.
import { ImageFetchLocation1764136000000 } from './1764136000000-ImageFetchLocation.js';

(MIGRATIONS as Function[]).push(ImageFetchLocation1764136000000);
// Guest networking: interfaces, node addresses, network state versions, metadata options.
import { Network1764137000000 } from './1764137000000-Network.js';

(MIGRATIONS as Function[]).push(Network1764137000000);
// Per-account quota overrides.
import { AccountQuotas1764138000000 } from './1764138000000-AccountQuotas.js';

(MIGRATIONS as Function[]).push(AccountQuotas1764138000000);

// Access key / account changes announced (NOTIFY koala_access_keys) for the CLC's key cache.
import { AccessKeyNotify1764139500000 } from './1764139500000-AccessKeyNotify.js';

(MIGRATIONS as Function[]).push(AccessKeyNotify1764139500000);
