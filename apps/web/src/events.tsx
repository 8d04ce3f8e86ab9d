/**
 * Live updates from the hub: one EventSource on /v1/events for the current workspace, shared by every page. Pages
 * subscribe to event types (`agent`, `service`, `stats`, `health`) and patch their lists; there is no polling.
 */

import type { HubEvent } from '@private-connect/api';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';

/** The data of each event the hub streams, by event name (the hub's own definition, in the protocol package). */
type EventTypes = { [E in HubEvent as E['event']]: E['data'] };
export type AgentEvent = EventTypes['agent'];
export type ServiceEvent = EventTypes['service'];
export type StatsEvent = EventTypes['stats'];
export type HealthEvent = EventTypes['health'];
type EventName = keyof EventTypes;
type Handler = (data: never) => void;

/** `live`: connected; `connecting`: (re)connecting; `off`: the hub refused the stream. */
export type LiveState = 'connecting' | 'live' | 'off';

interface Hub {
  state: LiveState;
  subscribe(type: EventName, handler: Handler): () => void;
}

const EventsContext = createContext<Hub | null>(null);

export function EventsProvider({ workspaceId, children }: { workspaceId: string; children: ReactNode }) {
  const handlers = useRef(new Map<EventName, Set<Handler>>());
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => {
    setState('connecting');
    const source = new EventSource(`/v1/events?workspace=${encodeURIComponent(workspaceId)}`);
    source.addEventListener('open', () => setState('live'));
    source.addEventListener('hello', () => setState('live'));
    // EventSource retries by itself after a dropped connection; CLOSED means the hub answered with an error.
    source.addEventListener('error', () => setState(source.readyState === EventSource.CLOSED ? 'off' : 'connecting'));
    for (const type of ['agent', 'service', 'stats', 'health'] as const) {
      source.addEventListener(type, (event) => {
        let data: unknown;
        try {
          data = JSON.parse((event as MessageEvent<string>).data);
        } catch {
          return;
        }
        for (const handler of handlers.current.get(type) ?? []) (handler as (d: unknown) => void)(data);
      });
    }
    return () => source.close();
  }, [workspaceId]);
  const subscribe = useCallback((type: EventName, handler: Handler) => {
    const set = handlers.current.get(type) ?? new Set<Handler>();
    handlers.current.set(type, set);
    set.add(handler);
    return () => void set.delete(handler);
  }, []);
  const hub = useMemo<Hub>(() => ({ state, subscribe }), [state, subscribe]);
  return <EventsContext.Provider value={hub}>{children}</EventsContext.Provider>;
}

export function useLiveState(): LiveState {
  return useContext(EventsContext)?.state ?? 'off';
}

/** Calls `handler` for every `type` event of the current workspace while the component is mounted. */
export function useHubEvent<K extends EventName>(type: K, handler: (data: EventTypes[K]) => void): void {
  const hub = useContext(EventsContext);
  const latest = useRef(handler);
  latest.current = handler;
  const subscribe = hub?.subscribe;
  useEffect(() => subscribe?.(type, ((data: EventTypes[K]) => latest.current(data)) as Handler), [subscribe, type]);
}
