export * from './bus.js';
export * from './events.js';
export * from './nats-url.js';
export * from './nats-server-config.js';
export * from './sealed.js';
