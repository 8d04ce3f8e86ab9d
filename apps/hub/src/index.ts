export { systemClock, ManualClock, type Clock } from './clock.js';
export { startHub, type Hub, type StartOptions } from './hub.js';
export { loadConfig, parseDuration, ConfigError, type HubConfig } from './config.js';
export { collectJsonLines, createLogger, redactSecrets, maskIp, type Logger } from './logger.js';
export { createApiKey } from './store/bootstrap.js';
export { AGENT_PATH } from './relay/agent-endpoint.js';
export { createAccessLog, type AccessLog, type AccessLogOptions } from './sharing/access-log.js';
export * from './db/index.js';
