/**
 * Every error that crosses a boundary (HTTP API, WebSocket close, OPEN_ERROR/RESET frame, CLI exit) has a stable
 * code from this table, an HTTP status, and a WebSocket close code for errors that end a connection.
 * Hub, CLI and SDK all read this one table.
 */

interface ErrorSpec {
  /** HTTP status for API responses. */
  status: number;
  /** WebSocket close code (4000-4999 private range) when the error ends an agent connection. */
  close: number;
  /** What the error means, for docs and for messages without more detail. */
  summary: string;
}

export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, close: 4400, summary: 'The request is malformed.' },
  BAD_MESSAGE: { status: 400, close: 4400, summary: 'A message on the agent connection is malformed.' },
  INVALID_NAME: { status: 400, close: 4400, summary: 'A service name must be a DNS label: a-z, 0-9 and -, at most 63 characters.' },
  INVALID_TARGET: { status: 400, close: 4400, summary: 'A target must be host:port with a port from 1 to 65535.' },
  UNAUTHORIZED: { status: 401, close: 4401, summary: 'Credentials are missing or not valid.' },
  TOKEN_EXPIRED: { status: 401, close: 4401, summary: 'The agent token has expired; run `connect up` again to re-enrol.' },
  LINK_EXPIRED: { status: 401, close: 4401, summary: 'The sign-in link has expired; ask for a new one.' },
  LINK_USED: { status: 401, close: 4401, summary: 'The sign-in link was already used; each link works once. Ask for a new one.' },
  AUTHORIZATION_PENDING: { status: 400, close: 4400, summary: 'The device code has not been approved yet; keep polling.' },
  DEVICE_CODE_EXPIRED: { status: 400, close: 4400, summary: 'The device code expired before it was approved; run `connect up` again.' },
  SESSION_EXPIRED: { status: 401, close: 4401, summary: 'The session has ended (signed out, or unused for 30 days); sign in again.' },
  FORBIDDEN: { status: 403, close: 4403, summary: 'These credentials may not do that.' },
  NOT_FOUND: { status: 404, close: 4404, summary: 'Not found.' },
  SERVICE_NOT_FOUND: { status: 404, close: 4404, summary: 'Service not found.' },
  SERVICE_OFFLINE: { status: 503, close: 4503, summary: 'The agent exposing this service is not connected.' },
  AGENT_OFFLINE: { status: 409, close: 4409, summary: 'The agent is not connected to the hub; try again once it is online.' },
  SERVICE_NAME_TAKEN: { status: 409, close: 4409, summary: 'Another agent already exposes a service with this name.' },
  TARGET_UNREACHABLE: { status: 502, close: 4502, summary: 'The exposing agent could not connect to its local target.' },
  OPEN_TIMEOUT: { status: 504, close: 4504, summary: 'The exposing agent did not answer the stream open in time.' },
  PEER_GONE: { status: 502, close: 4502, summary: 'The other agent of the stream disconnected.' },
  HUB_GONE: { status: 502, close: 4502, summary: 'The hub of the other agent of the stream went away (several hubs); the agent did not come back on another hub in time.' },
  STREAM_CLOSED: { status: 400, close: 4400, summary: 'The stream was closed.' },
  PROTOCOL_ERROR: { status: 400, close: 4002, summary: 'The peer broke the wire protocol.' },
  FRAME_TOO_LARGE: { status: 413, close: 4003, summary: 'A frame is larger than the protocol allows.' },
  CONTROL_TOO_LARGE: { status: 413, close: 4003, summary: 'A control message is larger than the protocol allows.' },
  FLOW_CONTROL: { status: 400, close: 4005, summary: 'The peer sent more data than its credit allowed.' },
  TOO_MANY_STREAMS: { status: 429, close: 4429, summary: 'Too many streams are open on this connection.' },
  HANDSHAKE_TIMEOUT: { status: 408, close: 4008, summary: 'The agent did not complete the handshake in time.' },
  UNSUPPORTED_VERSION: { status: 426, close: 4426, summary: 'The agent speaks a protocol version this hub does not.' },
  IDLE_TIMEOUT: { status: 408, close: 4008, summary: 'Nothing was received on the connection for too long.' },
  REPLACED: { status: 409, close: 4409, summary: 'A newer connection of the same agent took over this service.' },
  RATE_LIMITED: { status: 429, close: 4429, summary: 'Too many requests; wait and try again.' },
  PAYLOAD_TOO_LARGE: { status: 413, close: 4003, summary: 'The request body is too large.' },
  SHUTTING_DOWN: { status: 503, close: 4503, summary: 'The hub is shutting down; reconnect.' },
  HUB_REBALANCING: { status: 503, close: 4503, summary: 'This hub carries more agents than its share of the cluster; the agent moves to another of its hubs.' },
  HUB_UNREACHABLE: { status: 503, close: 4503, summary: 'The hub cannot be reached.' },
  HUB_CERTIFICATE: { status: 502, close: 4502, summary: 'The hub\'s TLS certificate is not trusted here, has expired, or names another host.' },
  PORT_IN_USE: { status: 409, close: 4409, summary: 'The local port is already in use.' },
  ALREADY_REACHED: { status: 409, close: 4409, summary: 'This config folder already reaches the service; use the address it listens on, or stop it with `connect down NAME` first.' },
  NOT_ENROLLED: { status: 401, close: 4401, summary: 'This machine has no agent token yet; run `connect up` first.' },
  NO_TERMINAL: { status: 400, close: 4400, summary: 'Enrolling by device code needs a person at a terminal; scripts pass --api-key (or --device to wait for an approval anyway).' },
  INSECURE_HUB: { status: 400, close: 4400, summary: 'Plain http:// or ws:// is only allowed to a loopback hub.' },
  SHARE_EXPIRED: { status: 410, close: 4410, summary: 'The share has expired; ask its owner for a new one.' },
  SHARE_REVOKED: { status: 410, close: 4410, summary: 'The share was revoked by its owner.' },
  SHARE_ALREADY_JOINED: { status: 409, close: 4409, summary: 'This share code was already used by a workspace; each share opens to one workspace.' },
  SHARE_NAME_TAKEN: { status: 409, close: 4409, summary: 'A live share already has this name (or alias) in the workspace; pick another one.' },
  PUBLIC_LINK_GONE: { status: 410, close: 4410, summary: 'This public link has expired or was revoked.' },
  METHOD_NOT_ALLOWED: { status: 405, close: 4403, summary: 'This HTTP method is not allowed by the share or link.' },
  PATH_NOT_ALLOWED: { status: 403, close: 4403, summary: 'This path is outside the prefixes the share or link allows.' },
  HTTP_ONLY_LIMIT: { status: 400, close: 4400, summary: 'Method and path limits need an HTTP service (expose it with --http).' },
  HUB_PORTS_EXHAUSTED: { status: 503, close: 4503, summary: 'Every port of HUB_TCP_PORT_RANGE is taken; widen the range or free a port.' },
  E2E_REQUIRED: { status: 426, close: 4426, summary: 'One side of the stream requires end-to-end encryption and the other did not offer it; plaintext needs --no-e2e on both agents.' },
  E2E_HANDSHAKE_FAILED: { status: 502, close: 4502, summary: 'The end-to-end handshake did not verify: something between the agents altered it.' },
  E2E_KEY_CHANGED: { status: 502, close: 4502, summary: 'The exposing agent presented an identity key other than the one pinned in known_agents.json; if that change is expected, run `connect trust <agent>`.' },
  E2E_DECRYPT_FAILED: { status: 502, close: 4502, summary: 'An end-to-end encrypted record did not authenticate: it was altered, replayed or reordered on the way.' },
  E2E_TRUNCATED: { status: 502, close: 4502, summary: 'The stream ended without its authenticated end marker: it was cut short on the way.' },
  E2E_SESSION_UNKNOWN: { status: 502, close: 4502, summary: 'The exposing agent holds no end-to-end session of that id with this agent (it restarted, or the session ended); the opening agent makes a new handshake.' },
  CSRF: { status: 403, close: 4403, summary: 'A signed-in browser request that changes something must be JSON sent from the hub\'s own pages; this one came from another site or as a form.' },
  AMBIGUOUS_PATH: { status: 400, close: 4400, summary: 'The request path holds an encoded / or \\, a .. segment, a NUL or a bad %-escape; the share or link refuses paths the service could read differently.' },
  TOO_MANY_CONNECTIONS: { status: 429, close: 4429, summary: 'This agent token already has as many connections open as the hub allows (HUB_MAX_SOCKETS_PER_AGENT_TOKEN); close one, or enrol another agent.' },
  HUB_PORT_QUOTA: { status: 429, close: 4429, summary: 'This workspace already holds as many hub TCP ports as the hub allows (HUB_TCP_PORTS_PER_WORKSPACE); release one first.' },
  INVITATION_REVOKED: { status: 410, close: 4410, summary: 'This invitation was revoked, or its member was removed; ask an admin for a new one.' },
  DIRECT_REFUSED: { status: 403, close: 4403, summary: 'The direct connection was refused: its ticket was missing, expired, revoked, for another agent or service, or not proven by its holder.' },
  DIRECT_UNAVAILABLE: { status: 409, close: 4409, summary: 'No direct path to this service: direct connections are off (agent or workspace), or the exposing agent gave no address.' },
  INTERNAL: { status: 500, close: 1011, summary: 'Internal error.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The JSON shape of an error on every boundary: `{ code, message }` (HTTP bodies wrap it in `{ error }`). */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** An error with a stable code. `message` is written for a person and says what was expected. */
export class ConnectError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string = ERROR_CODES[code].summary, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectError';
    this.code = code;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get closeCode(): number {
    return ERROR_CODES[this.code].close;
  }

  toJSON(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

/** A violation of the wire protocol: ends the connection that sent it. */
export class ProtocolError extends ConnectError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}

/** Rebuilds a ConnectError from a `{code, message}` received over the wire; unknown codes become INTERNAL. */
export function errorFromBody(body: unknown): ConnectError {
  if (typeof body === 'object' && body !== null) {
    const { code, message } = body as { code?: unknown; message?: unknown };
    if (isErrorCode(code)) return new ConnectError(code, typeof message === 'string' ? message : undefined);
  }
  return new ConnectError('INTERNAL');
}

/** Builds a WebSocket close reason (at most 123 bytes): `CODE: message`, cut to fit. */
export function closeReason(code: ErrorCode, message: string): string {
  const full = `${code}: ${message}`;
  const bytes = Buffer.from(full, 'utf8');
  if (bytes.length <= 123) return full;
  return bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '') + '...';
}

/** Parses a close reason written by closeReason back into a code and message. */
export function parseCloseReason(reason: string): ErrorBody | undefined {
  const match = /^([A-Z0-9_]+): (.*)$/s.exec(reason);
  if (!match || !isErrorCode(match[1])) return undefined;
  return { code: match[1], message: match[2]! };
}
