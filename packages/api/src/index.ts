export * from './requests.js';
export * from './params.js';
export * from './responses.js';
export * from './routes.js';
