export * from './processes.js';
export * from './harness.js';
export * from './tcp.js';
