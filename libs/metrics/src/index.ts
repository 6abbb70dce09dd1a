export * from './registry.js';
export * from './access.js';
export * from './server.js';
