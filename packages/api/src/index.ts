export * from './requests.js';
export * from './params.js';
export * from './responses.js';
export * from './routes.js';
export * from './route-types.js';
export * from './route-path.js';
