// The instance type table: the built-in one, or KOALA_INSTANCE_TYPES_FILE read and validated at
// start (errors name the file and the problem); InstanceTypesService lists it by name and looks
// types up. The file is read through `loadInstanceTypes`' reader; one case reads a real file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILT_IN_INSTANCE_TYPES } from './instance-types.table.js';
import { InstanceTypesService, loadInstanceTypes } from './instance-types.service.js';

const FILE = '/etc/koala/types.json';
const reads = (text: string) => (path: string) => {
  expect(path).toBe(FILE);
  return text;
};

describe('loadInstanceTypes', () => {
  it('without a file: a copy of the built-in table (changing it leaves the built-ins alone)', () => {
    const t = loadInstanceTypes(undefined, () => {
      throw new Error('nothing to read');
    });
    expect(t).toEqual(BUILT_IN_INSTANCE_TYPES);
    t[0]!.vcpus = 99;
    expect(BUILT_IN_INSTANCE_TYPES[0]!.vcpus).not.toBe(99);
  });

  it('a file replaces the whole table; ephemeralGiB defaults to 0', () => {
    const t = loadInstanceTypes(FILE, reads(JSON.stringify([{ name: 'x1.tiny', vcpus: 1, memoryMiB: 64, rootDiskGiB: 1 }])));
    expect(t).toEqual([{ name: 'x1.tiny', vcpus: 1, memoryMiB: 64, rootDiskGiB: 1, ephemeralGiB: 0 }]);
  });

  it.each([
    ['not JSON', '[{', /^KOALA_INSTANCE_TYPES_FILE \/etc\/koala\/types\.json: .*JSON/],
    ['an empty table', '[]', /types\.json: \(root\): /],
    ['a bad name', JSON.stringify([{ name: 'Big', vcpus: 1, memoryMiB: 64, rootDiskGiB: 1 }]), /types\.json: 0\.name: an instance type name/],
    ['no vCPU', JSON.stringify([{ name: 'x1.a', vcpus: 0, memoryMiB: 64, rootDiskGiB: 1 }]), /types\.json: 0\.vcpus: /],
    [
      'a name twice',
      JSON.stringify([
        { name: 'x1.a', vcpus: 1, memoryMiB: 64, rootDiskGiB: 1 },
        { name: 'x1.a', vcpus: 2, memoryMiB: 64, rootDiskGiB: 1 },
      ]),
      /types\.json: 1\.name: duplicate instance type x1\.a/,
    ],
  ])('refuses %s, naming the file and the problem', (_what, text, message) => {
    expect(() => loadInstanceTypes(FILE, reads(text))).toThrow(message);
  });

  it('a file that cannot be read names the file', () => {
    expect(() =>
      loadInstanceTypes(FILE, () => {
        throw new Error('ENOENT: no such file or directory');
      }),
    ).toThrow(`KOALA_INSTANCE_TYPES_FILE ${FILE}: ENOENT`);
  });
});

describe('InstanceTypesService', () => {
  it('lists the built-in types by name, frozen, and looks each up', () => {
    const s = new InstanceTypesService({ instanceTypesFile: undefined });
    const names = s.list().map((t) => t.name);
    expect(names).toEqual(BUILT_IN_INSTANCE_TYPES.map((t) => t.name).sort());
    expect(Object.isFrozen(s.list())).toBe(true);
    expect(s.lookup('c1.medium')).toEqual({ name: 'c1.medium', vcpus: 2, memoryMiB: 512, rootDiskGiB: 4, ephemeralGiB: 1 });
    expect(s.lookup('m9.huge')).toBeUndefined();
  });

  it('reads KOALA_INSTANCE_TYPES_FILE at construction', () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-types-'));
    try {
      const file = join(dir, 'types.json');
      writeFileSync(
        file,
        JSON.stringify([
          { name: 'z1.b', vcpus: 2, memoryMiB: 64, rootDiskGiB: 1 },
          { name: 'a1.a', vcpus: 1, memoryMiB: 32, rootDiskGiB: 1, ephemeralGiB: 2 },
        ]),
      );
      const s = new InstanceTypesService({ instanceTypesFile: file });
      expect(s.list().map((t) => t.name)).toEqual(['a1.a', 'z1.b']);
      expect(s.lookup('a1.a')?.ephemeralGiB).toBe(2);
      expect(s.lookup('m1.small')).toBeUndefined(); // the file replaces the built-ins
      writeFileSync(file, '{}');
      expect(() => new InstanceTypesService({ instanceTypesFile: file })).toThrow(`KOALA_INSTANCE_TYPES_FILE ${file}: (root): `);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
