export * from './processes.js';
export * from './harness.js';
export * from './tcp.js';
export * from './slow-reader.js';
export * from './postgres.js';
export * from './inproc-hub.js';
export * from './raw-agent.js';
export * from './evil-hub.js';
