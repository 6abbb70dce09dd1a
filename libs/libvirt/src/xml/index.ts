// Public API of the libvirt XML builders/parsers (re-exported by libs/libvirt/src/index.ts).
export * from './capabilities.js';
export * from './disk.js';
export * from './domain.js';
export * from './network.js';
export * from './nwfilter.js';
export * from './secret.js';
export * from './storage-pool.js';
export * from './storage-volume.js';
