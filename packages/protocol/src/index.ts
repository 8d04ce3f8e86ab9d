export * from './frame.js';
export * from './limits.js';
export * from './errors.js';
export * from './control.js';
export * from './names.js';
export * from './api.js';
export * from './http-rules.js';
export * from './e2e.js';
