/** Named limits shared by hub and agents. Every one of them has a test that goes past it. */

/** Largest payload of one frame. Agents cut DATA into pieces no larger than this. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;
/** Largest CONTROL message (JSON). */
export const MAX_CONTROL_MESSAGE = 64 * 1024;
/** Largest OPEN / OPEN_ERROR / RESET / GOAWAY JSON payload the hub accepts. */
export const MAX_SMALL_JSON = 4 * 1024;
/** Credit each side of a new stream starts with, in bytes. Bounds what the hub may hold for one stream direction. */
export const INITIAL_STREAM_WINDOW = 2 * 1024 * 1024;
/** A receiver grants credit back once it has consumed this many bytes (a quarter of the window). */
export const WINDOW_UPDATE_THRESHOLD = INITIAL_STREAM_WINDOW / 4;
/**
 * DATA bytes one agent connection may have in the hub, all its streams together, that the hub has not yet written
 * out to their receivers (the connection window, as in HTTP/2). Bounds what the hub holds for one sender whatever
 * its number of streams. Twice a stream window, so one stream at full speed is held back by its own window first.
 */
export const CONNECTION_WINDOW = 4 * 1024 * 1024;
/** The hub grants connection credit back once this many bytes were written out (an eighth of the window). */
export const CONNECTION_WINDOW_UPDATE_THRESHOLD = CONNECTION_WINDOW / 8;
/**
 * A receiving agent that takes none of the bytes the hub has for it for this long is closed with IDLE_TIMEOUT: its
 * senders' connection credit is held meanwhile, so this bounds how long it holds them back.
 */
export const WRITE_STALL_TIMEOUT_MS = 45_000;
/** Time an agent has after the WebSocket upgrade to send its hello. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Open streams one agent connection may have at once (both directions together). */
export const MAX_STREAMS_PER_CONNECTION = 4096;
/** Time a stream open may wait for the exposing agent's answer. */
export const OPEN_TIMEOUT_MS = 15_000;
/** The most hubs an agent says in hello that it knows (`hubs`). */
export const MAX_HELLO_HUBS = 64;
/** How often each side pings an otherwise quiet connection. */
export const PING_INTERVAL_MS = 15_000;
/** A connection with nothing received for this long is considered dead and closed. */
export const IDLE_TIMEOUT_MS = 45_000;
/** Service names: DNS labels, lower case, at most this long. */
export const MAX_SERVICE_NAME = 63;
/** Agent labels (host names, free text) are cut to this length. */
export const MAX_LABEL = 128;
/** Control requests one connection may have waiting for a reply at once. */
export const MAX_PENDING_CONTROL = 64;
/** Longest wait a GOAWAY may ask of an agent before it reconnects (its `reconnectMs`). */
export const MAX_GOAWAY_RECONNECT_MS = 60_000;

/** An agent warns (and `connect status` shows it) once less than this time is left before its token stops working. */
export const TOKEN_EXPIRY_WARNING_MS = 7 * 24 * 60 * 60 * 1000;

/** Checks one health report may carry (`health` control op). */
export const MAX_HEALTH_CHECKS = 16;
/** Longest detail or hint of one health check, in characters. */
export const MAX_HEALTH_TEXT = 512;
/** How often an exposing agent checks its targets and reports to the hub, unless told otherwise. */
export const HEALTH_CHECK_INTERVAL_MS = 30_000;

// Fields of control messages and OPEN payloads (control-schemas.ts). A longer field is refused, naming it.

/** Ids the hub hands out (agent, workspace, connection, tunnel, share): UUIDs, with room to spare. */
export const MAX_ID = 64;
/** An agent's version and platform strings in hello. */
export const MAX_AGENT_VERSION = 64;
/** A time written out (ISO 8601) in a control message. */
export const MAX_TIME_TEXT = 64;
/** An agent token pushed by the hub (`token` message). */
export const MAX_TOKEN = 256;
/** A service as an agent or the hub names it in a message: `name`, or `alias/name` for a service through a share. */
export const MAX_SERVICE_REF = 255;
/** An expose target, `host:port`. */
export const MAX_TARGET = 255;
/** The message of an error payload, a reply's error or a GOAWAY; longer error messages are cut to this. */
export const MAX_ERROR_MESSAGE = 1024;
/** What a GOAWAY asks when it says nothing: a random wait of at most this long before reconnecting. */
export const DEFAULT_GOAWAY_RECONNECT_MS = 500;
/** A share's name as it reaches the exposing agent (OPEN notice). */
export const MAX_SHARE_NAME = 63;
/** Methods, or path prefixes, one share policy may list (OPEN notice). */
export const MAX_SHARE_RULES = 64;
/** An HTTP method in a share policy or an access report. */
export const MAX_HTTP_METHOD = 16;
/** A path prefix in a share policy. */
export const MAX_SHARE_PATH = 512;
/** The request path an access report carries. */
export const MAX_REPORTED_PATH = 2048;
/** An IP address in a message (the opener's, in an OPEN notice or an access report). */
export const MAX_ADDRESS = 64;
/** Most requests one access report may stand for. */
export const MAX_ACCESS_REPORT_COUNT = 1_000_000;
/** Longest time one health check may report, in milliseconds (an hour). */
export const MAX_HEALTH_CHECK_MS = 3_600_000;

/** At most this many direct-path candidates are advertised by an agent and handed out by the hub (direct.ts). */
export const MAX_DIRECT_CANDIDATES = 16;
/** The longest direct ticket accepted (claims with a share's limits stay far below). */
export const MAX_DIRECT_TICKET = 8192;
