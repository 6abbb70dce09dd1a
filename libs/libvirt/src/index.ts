export * from './xdr.js';
export * from './transport.js';
export * from './rpc.js';
export * from './constants.js';
export * from './procedures.js';
export * from './libvirt.js';
export * from './xml/index.js';
export * from './xml/index.js';
