/**
 * The hub's services: what its parts share, built once by startHub (hub.ts). Each part names what it needs as its
 * own type (the relay's RelayContext, sharing's SharingContext, the routes' and pages' IdentityDeps, the cluster's
 * ClusterDeps), and this one object is all of them.
 */

import type { IdentityDeps } from './api/auth-routes.js';
import type { Cluster, ClusterDeps } from './cluster/cluster.js';
import type { RelayContext } from './relay/agent-connection.js';
import type { SharingContext } from './sharing/context.js';

export type HubServices = RelayContext &
  SharingContext &
  IdentityDeps &
  ClusterDeps & {
    /** This hub's place among several (NATS_URL), or undefined for a hub alone. */
    readonly cluster: Cluster | undefined;
  };
