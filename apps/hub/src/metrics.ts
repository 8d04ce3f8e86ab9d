/** Prometheus metrics of one hub (its own registry, so several hubs can live in one process). */

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentConnection } from './relay/agent-connection.js';
import type { RelayStats } from './relay/relay-stats.js';

export function createMetrics(stats: RelayStats, connections: Set<AgentConnection>): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  gauge('connect_agents_connected', 'Agent connections past their handshake.', () => connections.size);
  gauge('connect_streams_open', 'Streams open (counted once per stream).', () => {
    let n = 0;
    for (const conn of connections) n += conn.streamCount;
    return n / 2;
  });
  gauge('connect_relay_buffered_bytes', 'Bytes queued in the hub towards agents, all connections.', () => {
    let n = 0;
    for (const conn of connections) n += conn.bufferedAmount;
    return n;
  });
  counter('connect_relay_bytes_total', 'DATA payload bytes relayed.', () => stats.bytesRelayed);
  counter('connect_stream_opens_total', 'Streams opened successfully.', () => stats.streamsOpened);
  counter('connect_stream_open_failures_total', 'Stream opens refused or failed.', () => stats.streamOpenFailures);
  counter('connect_auth_failures_total', 'Refused credentials on the API and agent endpoint.', () => stats.authFailures);
  counter('connect_protocol_errors_total', 'Agent connections closed for breaking the protocol.', () => stats.protocolErrors);
  return registry;
}
