/**
 * Prometheus metrics of one hub (its own registry, so several hubs can live in one process), and who may read
 * them: with METRICS_TOKEN set, whoever sends it as a bearer token; without, loopback clients only.
 */

import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ConnectError } from '@private-connect/protocol';
import type { AgentConnection } from './relay/agent-connection.js';
import { openPairs, type RelayPeer } from './relay/streams.js';
import { AUTH_FAILURE_REASONS, type RelayStats } from './relay/relay-stats.js';

/** Buckets of the stream open latency histogram, in seconds (1 ms to 10 s: a LAN open is a few ms). */
export const OPEN_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The hub's registry. Replaces `stats.openLatency` with the histogram, so the relay observes into it. `peers` lists
 * every holder of stream ends besides the agent connections: the hub's own opener and its links to other hubs.
 */
export function createMetrics(stats: RelayStats, connections: Set<AgentConnection>, peers: () => Iterable<RelayPeer> = () => [], linkIdleStreams: () => number = () => 0): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  /** A counter mirrored from the relay's plain numbers on each scrape, one sample per label value. */
  const counter = <L extends string>(name: string, help: string, label: L | undefined, read: () => Array<[string, number]>) =>
    new Counter({
      name,
      help,
      labelNames: label ? [label] : [],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, n] of read()) {
          if (label) this.inc({ [label]: value } as Partial<Record<L, string>>, n);
          else this.inc(n);
        }
      },
    });
  const total = (read: () => number) => () => [['', read()]] as Array<[string, number]>;

  gauge('connect_agents_connected', 'Agents online: agent connections past their handshake.', () => connections.size);
  gauge('connect_streams_open', 'Streams open (counted once per stream).', () => openPairs(connections) + openPairs(peers()));
  gauge('connect_public_link_idle_streams', 'Streams to public links\' apps waiting, idle, for the next client (counted in connect_streams_open too).', linkIdleStreams);
  gauge('connect_relay_buffered_bytes', 'Bytes queued in the hub towards agents, all connections.', () => {
    let n = 0;
    for (const conn of connections) n += conn.bufferedAmount;
    return n;
  });
  counter('connect_relay_bytes_total', 'DATA payload bytes relayed, by direction: to_service (from the opening side) or from_service.', 'direction', () => [
    ['to_service', stats.bytesToService],
    ['from_service', stats.bytesFromService],
  ]);
  counter('connect_stream_opens_total', 'Streams opened successfully.', undefined, total(() => stats.streamsOpened));
  counter('connect_stream_opens_encrypted_total', 'Streams opened end-to-end encrypted (the hub cannot read them).', undefined, total(() => stats.streamsEncrypted));
  counter('connect_stream_open_failures_total', 'Stream opens refused or failed.', undefined, total(() => stats.streamOpenFailures));
  counter('connect_auth_failures_total', 'Refused credentials on the API and agent endpoint, by reason.', 'reason', () =>
    AUTH_FAILURE_REASONS.map((reason) => [reason, stats.authFailuresByReason[reason]]),
  );
  counter('connect_protocol_errors_total', 'Agent connections closed for breaking the protocol.', undefined, total(() => stats.protocolErrors));
  stats.openLatency = new Histogram({
    name: 'connect_stream_open_seconds',
    help: 'Time from a stream open reaching the hub to the exposing agent accepting it.',
    buckets: OPEN_LATENCY_BUCKETS,
    registers: [registry],
  });
  return registry;
}

/**
 * Who may read /metrics. With a token: a request bearing it (from anywhere). Without: a loopback peer whose request
 * came through no proxy (a reverse proxy on the same machine would otherwise publish the metrics).
 */
export function checkMetricsAccess(request: FastifyRequest, token: string | undefined): void {
  if (token !== undefined) {
    const sent = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
    if (!sameSecret(sent, token)) throw new ConnectError('UNAUTHORIZED', 'send the METRICS_TOKEN of this hub: Authorization: Bearer <token>');
    return;
  }
  const peer = request.raw.socket.remoteAddress ?? '';
  const proxied = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined;
  if (!isLoopbackAddress(peer) || proxied) {
    throw new ConnectError('FORBIDDEN', '/metrics answers loopback clients only; set METRICS_TOKEN on the hub to scrape it from elsewhere');
  }
}

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function isLoopbackAddress(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}
