/**
 * What one hub tells every other hub to do or show: revocations (an agent's connections, the streams of a share or
 * public link) and hub TCP ports allocated or released, on `<ns>.presence`; and the dashboards' live events (agents,
 * services, health) on `<ns>.events`, so that a dashboard sees the whole cluster whichever hub it is connected to.
 */

import type { EventBus, HubEvent } from '../events.js';
import type { DirectGrant, SessionsEnd } from '../relay/agent-connection.js';
import type { ClusterBus } from './bus.js';
import type { PresenceMessage, PresenceOf } from './messages.js';

export interface Broadcasts {
  /** An agent was revoked here: the other hubs end its connections too. */
  revokeAgent(workspaceId: string, agentId: string): void;
  /** A share or public link was revoked here: the other hubs cut its streams too. */
  revoked(kind: 'share' | 'link', id: string): void;
  /** A hub TCP port was allocated or released here: the other hubs listen on it too, or stop. */
  hubPort(port: number, workspaceId: string, name: string, on: boolean): void;
  /** End-to-end sessions ended here (an agent's new identity, a revoked share): the other hubs tell their agents too. */
  endSessions(end: SessionsEnd): void;
  /** A direct ticket was handed out here for an exposing agent connected to another hub: its hub notes whom to tell. */
  directGrant(grant: DirectGrant): void;
  /** Another hub's revocation, hub port, end of sessions or direct grant. */
  receive(m: PresenceOf<'revoke' | 'cut' | 'hubport' | 'endsessions' | 'directgrant'>): void;
  /** Stops forwarding this hub's events. */
  close(): void;
}

export interface BroadcastsDeps {
  bus: ClusterBus;
  /** The dashboards' live events: agent and service changes and health reports go to every hub's subscribers. */
  events: EventBus;
  /** Ends this hub's connections of an agent revoked on another hub. */
  cutAgent(workspaceId: string, agentId: string): void;
  /** Ends this hub's streams through a share or public link revoked on another hub. */
  cutRevoked(kind: 'share' | 'link', id: string): void;
  /** Another hub allocated (`on`) or released a hub TCP port. */
  followHubPort(port: number, workspaceId: string, name: string, on: boolean): void;
  /** Tells this hub's agents that sessions ended on another hub's word. */
  endSessions(end: SessionsEnd): void;
  /** Notes a direct ticket another hub handed out on this hub's connections of its exposing agent. */
  directGrant(grant: DirectGrant): void;
}

export function createBroadcasts(deps: BroadcastsDeps): Broadcasts {
  const { bus } = deps;
  const hubId = bus.hubId;
  const tell = (m: PresenceMessage) => void bus.send('presence', m);

  bus.listen('events', (value) => {
    const m = value as { hub?: unknown; ws?: unknown; event?: unknown } | undefined;
    if (typeof m?.hub !== 'string' || m.hub === hubId || typeof m.ws !== 'string' || !isForwardedEvent(m.event)) return;
    deps.events.deliver(m.ws, m.event);
  });
  deps.events.onPublish((ws, event) => {
    if (isForwardedEvent(event)) bus.send('events', { hub: hubId, ws, event });
  });

  return {
    revokeAgent: (ws, agentId) => tell({ t: 'revoke', hub: hubId, ws, agentId }),
    revoked: (kind, id) => tell({ t: 'cut', hub: hubId, ws: '', kind, id }),
    hubPort: (port, ws, name, on) => tell({ t: 'hubport', hub: hubId, ws, name, port, on }),
    endSessions: ({ workspaceId, ...end }) => tell({ t: 'endsessions', hub: hubId, ws: workspaceId, ...end }),
    directGrant: ({ workspaceId, ...grant }) => tell({ t: 'directgrant', hub: hubId, ws: workspaceId, ...grant }),
    receive(m) {
      switch (m.t) {
        case 'revoke':
          return deps.cutAgent(m.ws, m.agentId);
        case 'cut':
          return deps.cutRevoked(m.kind, m.id);
        case 'hubport':
          return deps.followHubPort(m.port, m.ws, m.name, m.on);
        case 'endsessions': {
          const { t: _t, hub: _hub, ws, ...end } = m;
          return deps.endSessions({ workspaceId: ws, ...end });
        }
        case 'directgrant': {
          const { t: _t, hub: _hub, ws, ...grant } = m;
          return deps.directGrant({ workspaceId: ws, ...grant });
        }
      }
    },
    close: () => deps.events.onPublish(undefined),
  };
}

/** Events that travel to the other hubs' dashboards: agents, services and health. Traffic stats stay per hub. */
function isForwardedEvent(value: unknown): value is HubEvent {
  const e = value as { event?: unknown; data?: unknown } | null | undefined;
  return !!e && (e.event === 'agent' || e.event === 'service' || e.event === 'health') && typeof e.data === 'object' && e.data !== null;
}
