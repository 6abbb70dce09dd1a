export * from './schema.js';
export * from './config.module.js';
export * from './paths.js';
