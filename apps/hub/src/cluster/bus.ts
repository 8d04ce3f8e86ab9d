/**
 * This hub on NATS: one connection, subjects under the deployment's namespace (`<ns>.<subject>`), JSON messages, and
 * the question "is hub X still subscribed?" (a hub that died has no subscription, and NATS says "no responders" at
 * once). Every other part of the cluster talks to NATS through this.
 */

import type { Msg, NatsConnection, Status, Subscription } from '@nats-io/transport-node';
import { ConnectError } from '@private-connect/protocol';
import type { Logger } from '../logger.js';

/** The longest wait for a hub's answer to "are you there?"; no answer in time proves nothing (heartbeats decide). */
const PROBE_TIMEOUT_MS = 1_000;

export interface ClusterBus {
  readonly hubId: string;
  /** The deployment's subject namespace, `pc.<deployment id>`. */
  readonly namespace: string;
  /** Publishes `value` as JSON on `<ns>.<subject>`; false when NATS is closed or refuses it. */
  send(subject: string, value: unknown): boolean;
  /** Publishes bytes as they are on `<ns>.<subject>`. */
  sendBytes(subject: string, data: Uint8Array): boolean;
  /** JSON messages on `<ns>.<subject>` (wildcards allowed); one that does not parse comes as undefined. */
  listen(subject: string, onMessage: (value: unknown, msg: Msg) => void): void;
  /** Whether hub `other` is still subscribed: false only on "no responders" (it left NATS: it died). */
  present(other: string): Promise<boolean>;
  /** The largest message the NATS server takes. */
  maxPayload(): number;
  isClosed(): boolean;
  /** The connection's status changes (lost, back, too slow), until it closes. */
  status(): AsyncIterable<Status>;
  flush(): Promise<void>;
  /** Ends every subscription made with listen (the answer to present() stays until close). */
  unsubscribeAll(): void;
  /** Flushes what is pending, then closes the connection. */
  close(): Promise<void>;
}

/** Connects to NATS as hub `hubId` of namespace `namespace`, and answers the other hubs' present(). */
export async function connectBus(natsUrl: string, namespace: string, hubId: string, log: Logger): Promise<ClusterBus> {
  // Loaded here, by hubs in a cluster only: 2 MiB of heap a lone hub does not need.
  const { connect, Empty, RequestError } = await import('@nats-io/transport-node');
  let nc: NatsConnection;
  try {
    nc = await connect({ ...natsServer(natsUrl), name: `hub ${hubId}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  } catch (err) {
    throw new ConnectError('INTERNAL', `cannot connect to NATS at ${natsServer(natsUrl).servers}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const subject = (name: string) => `${namespace}.${name}`;
  /** Subscriptions made with listen; emptied by unsubscribeAll. */
  const subs: Subscription[] = [];
  /** The question in flight of whether a hub is still there, per hub; deleted when answered. */
  const probes = new Map<string, Promise<boolean>>();
  const sendBytes = (name: string, data: Uint8Array): boolean => {
    if (nc.isClosed()) return false;
    try {
      nc.publish(subject(name), data);
      return true;
    } catch (err) {
      log.debug({ err }, 'NATS publish failed');
      return false;
    }
  };
  // Answers present(): a hub that died has no subscription here.
  const answer = nc.subscribe(subject(`alive.${hubId}`), { callback: (_err, msg) => void msg.respond(Empty) });

  return {
    hubId,
    namespace,
    send: (name, value) => sendBytes(name, encoder.encode(JSON.stringify(value))),
    sendBytes,
    listen(name, onMessage) {
      subs.push(
        nc.subscribe(subject(name), {
          callback: (_err, msg) => {
            let value: unknown;
            try {
              value = JSON.parse(decoder.decode(msg.data));
            } catch {
              value = undefined;
            }
            onMessage(value, msg);
          },
        }),
      );
    },
    present(other) {
      let reply = probes.get(other);
      if (!reply) {
        reply = nc
          .request(subject(`alive.${other}`), Empty, { timeout: PROBE_TIMEOUT_MS })
          .then(
            () => true,
            (err: unknown) => !(err instanceof RequestError && err.isNoResponders()),
          )
          .finally(() => probes.delete(other));
        probes.set(other, reply);
      }
      return reply;
    },
    maxPayload: () => nc.info?.max_payload ?? 1024 * 1024,
    isClosed: () => nc.isClosed(),
    status: () => nc.status(),
    flush: () => nc.flush(),
    unsubscribeAll() {
      for (const sub of subs.splice(0)) sub.unsubscribe();
    },
    async close() {
      answer.unsubscribe();
      await nc.flush().catch(() => undefined);
      await nc.close();
    },
  };
}

/** NATS_URL as the client takes it: the server, and the user and password written in the URL (nats://user:pass@host). */
export function natsServer(natsUrl: string): { servers: string; user?: string; pass?: string } {
  if (!natsUrl.includes('://')) return { servers: natsUrl };
  const url = new URL(natsUrl);
  const servers = `${url.protocol}//${url.host}`;
  if (!url.username) return { servers };
  return { servers, user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
}
