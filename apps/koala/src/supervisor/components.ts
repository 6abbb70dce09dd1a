import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { ComponentKind } from '@koala/contracts';

const appsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ComponentSpec {
  kind: ComponentKind;
  /** Short name used for pid and log files and in `koala status`. */
  short: 'clc' | 'cc' | 'nc' | 'sc';
  entry: string;
}

/** The all-in-one cloud, in start order (CLC last so its health means "everything is wired"). */
export const COMPONENTS: ComponentSpec[] = [
  { kind: 'cluster-controller', short: 'cc', entry: join(appsDir, 'cluster-controller', 'src', 'main.js') },
  { kind: 'storage-controller', short: 'sc', entry: join(appsDir, 'storage-controller', 'src', 'main.js') },
  { kind: 'node-controller', short: 'nc', entry: join(appsDir, 'node-controller', 'src', 'main.js') },
  { kind: 'cloud-controller', short: 'clc', entry: join(appsDir, 'cloud-controller', 'src', 'main.js') },
];

export const CLC_ENTRY = COMPONENTS.find((c) => c.kind === 'cloud-controller')!.entry;
