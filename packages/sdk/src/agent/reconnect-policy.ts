/**
 * When and where an agent reconnects after its socket to the hub closed: which hub of its list comes next (each
 * lost or refused connection moves to the next one at once), how long to wait (capped exponential backoff with
 * jitter once every hub was tried; a short random wait after GOAWAY), and which errors end the agent instead.
 * It holds no socket: HubConnection tells it what happened and asks it what to do.
 */

import { randomInt } from 'node:crypto';
import { MAX_HELLO_HUBS, type ConnectError } from '@private-connect/protocol';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { agentEndpointUrl } from './hub-url.js';

/** After a GOAWAY, reconnect attempts for this long wait only a short random time, never the growing backoff. */
export const GOAWAY_FAST_RECONNECT_MS = 30_000;
/** Least wait between those attempts after the first (a hub that is restarting refuses for a while). */
const FAST_RETRY_FLOOR_MS = 250;
/** The wait before the first attempt after the hub closed the socket shutting down (without a GOAWAY first). */
const SHUTDOWN_RETRY_MS = 200;
/** Close codes after which reconnecting cannot help. */
const FATAL_CODES = new Set(['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN', 'UNSUPPORTED_VERSION']);

export interface ReconnectOptions {
  hubUrl: string;
  hubUrls?: readonly string[];
  hubOrder?: 'random' | 'listed';
  backoff?: BackoffOptions;
  allowInsecure?: boolean;
}

export interface ReconnectPolicy {
  /** The hub connected to, or tried next. */
  readonly hubUrl: string;
  /** Its agent endpoint (ws:// or wss://). */
  readonly endpoint: string;
  /** How many hubs this agent may move between, as told to the hub in hello (rebalancing moves only those above 1). */
  readonly hubCount: number;
  /** The hub welcomed the agent: the next loss starts over with no wait. */
  connected(): void;
  /** The hub sent GOAWAY: reconnects wait at most `reconnectMs` (at random) for GOAWAY_FAST_RECONNECT_MS. */
  goAway(reconnectMs: number): void;
  /** Whether the socket's end with `error` ends the agent: its token or version is refused, or its setup is wrong. */
  isFatal(error: ConnectError): boolean;
  /** The socket ended with `error` (not fatal): moves to the next hub and returns how long to wait before trying it. */
  next(error: ConnectError): number;
}

export function createReconnectPolicy(options: ReconnectOptions): ReconnectPolicy {
  const listed = [...new Set([options.hubUrl, ...(options.hubUrls ?? [])])];
  /** The agent endpoints of `hubUrl` and `hubUrls`, in the order they are tried. */
  const urls = (options.hubOrder === 'listed' ? listed : shuffled(listed)).map((hubUrl) => ({
    hubUrl,
    endpoint: agentEndpointUrl(hubUrl, options.allowInsecure ?? false),
  }));
  let index = 0;
  /** Failed attempts since the last welcome (or GOAWAY). */
  let attempt = 0;
  /** Until then (after a GOAWAY), reconnects wait a short random time instead of the backoff. */
  let fastUntil = 0;
  /** GOAWAY's reconnectMs: the most a reconnect after it waits. */
  let jitterMs = 0;
  /** A certificate refused before the first connection is a setup error (fatal); later, a reason to retry. */
  let everConnected = false;

  /** Wait before the next attempt: a short random one after GOAWAY, else the capped exponential backoff. */
  const delay = (error: ConnectError): number => {
    if (Date.now() < fastUntil) {
      const jitter = Math.round(Math.random() * jitterMs);
      return attempt === 0 ? jitter : Math.max(FAST_RETRY_FLOOR_MS, jitter);
    }
    if (error.code === 'SHUTTING_DOWN' && attempt === 0) return SHUTDOWN_RETRY_MS;
    // Each hub of the list gets one attempt per backoff step; moving on to another hub waits only a moment.
    if (attempt % urls.length !== urls.length - 1) return attempt === 0 ? 0 : FAST_RETRY_FLOOR_MS;
    return backoffDelay(Math.floor(attempt / urls.length), options.backoff ?? DEFAULT_BACKOFF);
  };

  return {
    get hubUrl() {
      return urls[index]!.hubUrl;
    },
    get endpoint() {
      return urls[index]!.endpoint;
    },
    hubCount: Math.min(urls.length, MAX_HELLO_HUBS),
    connected() {
      attempt = 0;
      everConnected = true;
      fastUntil = 0;
    },
    goAway(reconnectMs) {
      jitterMs = reconnectMs;
      fastUntil = Date.now() + GOAWAY_FAST_RECONNECT_MS;
      attempt = 0;
    },
    isFatal: (error) => FATAL_CODES.has(error.code) || (error.code === 'HUB_CERTIFICATE' && !everConnected),
    next(error) {
      // With several hubs, the next attempt goes to the next one: a dead hub costs one failed attempt, not a backoff.
      index = (index + 1) % urls.length;
      const wait = delay(error);
      attempt++;
      return wait;
    },
  };
}

/** A copy of `items` in random order (Fisher-Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
