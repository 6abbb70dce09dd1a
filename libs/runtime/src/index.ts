export * from './tokens.js';
export * from './runtime.module.js';
export * from './bootstrap.js';
export * from './periodic.js';
export * from './keyed-lock.js';
export * from './settle-all.js';
