import { z } from 'zod';

/** One instance type as Koala sizes a guest. */
export const InstanceTypeSpec = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'an instance type name such as m1.small'),
  vcpus: z.number().int().min(1).max(256),
  memoryMiB: z
    .number()
    .int()
    .min(16)
    .max(4 * 1024 * 1024),
  rootDiskGiB: z
    .number()
    .int()
    .min(1)
    .max(16 * 1024),
  ephemeralGiB: z
    .number()
    .int()
    .min(0)
    .max(16 * 1024)
    .default(0),
});
export type InstanceTypeSpec = z.infer<typeof InstanceTypeSpec>;

/** The `KOALA_INSTANCE_TYPES_FILE` format: a JSON array of specs with distinct names. */
export const InstanceTypesFile = z
  .array(InstanceTypeSpec)
  .min(1)
  .superRefine((types, ctx) => {
    const seen = new Set<string>();
    for (const [i, t] of types.entries()) {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate instance type ${t.name}` });
      seen.add(t.name);
    }
  });

/**
 * Built-in types, small enough for tiny test guests on a 2-core machine (the Eucalyptus names,
 * not AWS's sizes). Replace the whole table with `KOALA_INSTANCE_TYPES_FILE`.
 */
export const BUILT_IN_INSTANCE_TYPES: readonly InstanceTypeSpec[] = Object.freeze([
  { name: 't1.micro', vcpus: 1, memoryMiB: 128, rootDiskGiB: 1, ephemeralGiB: 0 },
  { name: 'm1.small', vcpus: 1, memoryMiB: 256, rootDiskGiB: 2, ephemeralGiB: 0 },
  { name: 'm1.medium', vcpus: 1, memoryMiB: 512, rootDiskGiB: 4, ephemeralGiB: 1 },
  { name: 'c1.medium', vcpus: 2, memoryMiB: 512, rootDiskGiB: 4, ephemeralGiB: 1 },
  { name: 'm1.large', vcpus: 2, memoryMiB: 1024, rootDiskGiB: 8, ephemeralGiB: 2 },
  { name: 'm1.xlarge', vcpus: 2, memoryMiB: 2048, rootDiskGiB: 10, ephemeralGiB: 2 },
]);
