import { Inject, Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { BUILT_IN_INSTANCE_TYPES, InstanceTypesFile, type InstanceTypeSpec } from './instance-types.table.js';

/** Reads and validates `KOALA_INSTANCE_TYPES_FILE`; throws an Error naming the file and the problem. */
export function loadInstanceTypes(file: string | undefined, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): InstanceTypeSpec[] {
  if (!file) return BUILT_IN_INSTANCE_TYPES.map((t) => ({ ...t }));
  let json: unknown;
  try {
    json = JSON.parse(read(file));
  } catch (e) {
    throw new Error(`KOALA_INSTANCE_TYPES_FILE ${file}: ${(e as Error).message}`);
  }
  const r = InstanceTypesFile.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new Error(`KOALA_INSTANCE_TYPES_FILE ${file}: ${first.path.join('.') || '(root)'}: ${first.message}`);
  }
  return r.data;
}

/** The instance type table (built in, or from `KOALA_INSTANCE_TYPES_FILE`, validated at start). */
@Injectable()
export class InstanceTypesService {
  private readonly types: readonly InstanceTypeSpec[];
  private readonly byName: ReadonlyMap<string, InstanceTypeSpec>;

  constructor(@Inject(KOALA_CONFIG) config: Pick<KoalaConfig, 'instanceTypesFile'>) {
    this.types = Object.freeze([...loadInstanceTypes(config.instanceTypesFile)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
    this.byName = new Map(this.types.map((t) => [t.name, t]));
  }

  /** Every type, sorted by name. */
  list(): readonly InstanceTypeSpec[] {
    return this.types;
  }

  /** `{ vcpus, memoryMiB, rootDiskGiB, ephemeralGiB }` of a type, or undefined. */
  lookup(name: string): InstanceTypeSpec | undefined {
    return this.byName.get(name);
  }
}
