/**
 * The in-process event bus behind GET /v1/events (the dashboard's live view). Publishers (the relay's control
 * handler) emit on the workspace's own channel; a subscriber hears one workspace only, the one it names, which the
 * SSE route takes from the authenticated principal. Per-service traffic is polled every STATS_INTERVAL_MS and
 * published as `stats` when it changed.
 */

import { EventEmitter } from 'node:events';
import type { HubEvent } from '@private-connect/api';
import type { ServiceTraffic } from './relay/service-traffic.js';

/** How often per-service traffic is compared and, when it changed, published as a `stats` event. */
export const STATS_INTERVAL_MS = 2_000;

/** Every event a dashboard can receive; `event` is the SSE event name, `data` its JSON (defined in the protocol package). */
export type { HubEvent };

export type EventListener = (event: HubEvent) => void;

export interface EventBus {
  /** Delivers `event` to the subscribers of `workspaceId`, and nobody else (and to `onPublish`). */
  publish(workspaceId: string, event: HubEvent): void;
  /** An event published on another hub of the cluster: to this hub's subscribers of `workspaceId` only. */
  deliver(workspaceId: string, event: HubEvent): void;
  /** The cluster's hook: hears every event published here (not the delivered ones, nor stats). */
  onPublish(listener: ((workspaceId: string, event: HubEvent) => void) | undefined): void;
  /** Listens to one workspace; returns the unsubscribe function. */
  subscribe(workspaceId: string, listener: EventListener): () => void;
  /** Called once when the hub closes (subscribers end their streams). */
  onClose(listener: () => void): () => void;
  /** Stops the stats poll and tells every `onClose` listener. */
  close(): void;
}

export function createEventBus(traffic: ServiceTraffic, statsIntervalMs = STATS_INTERVAL_MS): EventBus {
  // Channels are workspace ids; CLOSED is the hub's shutdown. Listeners are removed by their unsubscribe function.
  const emitter = new EventEmitter();
  const CLOSED = Symbol('closed');
  emitter.setMaxListeners(0);
  /** Subscribed workspace → subscriber count and the last stats published; deleted when its last subscriber leaves. */
  const watched = new Map<string, { subscribers: number; lastStats: string }>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let forward: ((workspaceId: string, event: HubEvent) => void) | undefined;

  const pollStats = () => {
    for (const [workspaceId, entry] of watched) {
      const services = traffic.snapshot(workspaceId);
      const text = JSON.stringify(services);
      if (text === entry.lastStats) continue;
      entry.lastStats = text;
      emitter.emit(workspaceId, { event: 'stats', data: { services } } satisfies HubEvent);
    }
  };

  return {
    publish(workspaceId, event) {
      if (watched.has(workspaceId)) emitter.emit(workspaceId, event);
      forward?.(workspaceId, event);
    },
    deliver(workspaceId, event) {
      if (watched.has(workspaceId)) emitter.emit(workspaceId, event);
    },
    onPublish(listener) {
      forward = listener;
    },
    subscribe(workspaceId, listener) {
      let entry = watched.get(workspaceId);
      if (!entry) watched.set(workspaceId, (entry = { subscribers: 0, lastStats: JSON.stringify(traffic.snapshot(workspaceId)) }));
      entry.subscribers++;
      emitter.on(workspaceId, listener);
      if (!timer && !closed) timer = setInterval(pollStats, statsIntervalMs);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        emitter.off(workspaceId, listener);
        if (--entry.subscribers === 0) watched.delete(workspaceId);
        if (watched.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    onClose(listener) {
      emitter.on(CLOSED, listener);
      return () => emitter.off(CLOSED, listener);
    },
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      emitter.emit(CLOSED);
    },
  };
}
