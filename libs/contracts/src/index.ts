export * from './subjects.js';
export * from './messages.js';
export * from './contract.js';
export * from './version.js';
export * from './instances.js';
export * from './volumes.js';
export * from './network.js';
export * from './permissions.js';
