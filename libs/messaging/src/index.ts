export * from './bus.js';
export * from './events.js';
