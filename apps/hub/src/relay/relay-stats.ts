/** Counters the relay bumps on its hot path; plain numbers, read by the metrics collector on scrape. */

import { ServiceTraffic } from './service-traffic.js';

export interface RelayStats {
  bytesRelayed: number;
  framesRelayed: number;
  streamsOpened: number;
  streamOpenFailures: number;
  authFailures: number;
  protocolErrors: number;
  /** Open streams and bytes per service (the dashboard's `stats` events and GET /v1/services). */
  services: ServiceTraffic;
}

export function createRelayStats(): RelayStats {
  return { bytesRelayed: 0, framesRelayed: 0, streamsOpened: 0, streamOpenFailures: 0, authFailures: 0, protocolErrors: 0, services: new ServiceTraffic() };
}
