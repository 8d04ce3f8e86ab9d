export { Agent, AGENT_VERSION, type AgentEvent, type AgentOptions, type ExposeOptions, type Reach, type ReachOptions, type ServiceTraffic } from './agent/agent.js';
export { HubConnection, type HubConnectionOptions, type IncomingOpen } from './agent/hub-connection.js';
export type { E2EOptions } from './agent/stream-handshake.js';
export { KnownAgents, type KnownAgent, type PresentedAgent } from './agent/known-agents.js';
export { loadOrCreateIdentity } from './agent/identity-file.js';
export { RECORD_BYTES, TunnelStream, duplexPair, type StreamSocket, type StreamTransport, type PairedDuplex } from '@private-connect/tunnel';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './agent/backoff.js';
export { agentEndpointUrl, apiBaseUrl, isLoopbackHost, parseHubUrl, assertSecureHub, trustHubCa, hubCa, hubConnectError } from './agent/hub-url.js';
export { choosePort, portIsFree, readPorts, savePort, type PortChoice } from './agent/port-store.js';
export * from './config-store.js';
export { homeAgentOptions, type HomeAgentSettings } from './home-agent-options.js';
export { reach, type Reached, type ReachServiceOptions } from './reach.js';
export { expose, type Exposed, type ExposeServiceOptions } from './expose.js';
export { startAgent, DEFAULT_CONNECT_TIMEOUT_MS, type ConnectOptions } from './start-agent.js';
export { deviceLogin, type DeviceCode, type DeviceLoginOptions } from './device-login.js';
export {
  ApiClient,
  type AgentSummary,
  type ServiceSummary,
  type EnrolResult,
  type Me,
  type ApiClientOptions,
  type RotatedToken,
  type AuditQuery,
} from './api-client.js';
export {
  forgetServices,
  readState,
  rememberService,
  statePath,
  MAX_STATE_ENTRIES,
  type AgentState,
  type ExposeEntry,
  type ReachEntry,
  type StateEntry,
} from './agent-state.js';
export * from './diagnostics/index.js';
