/** Assembles a hub: database, HTTP API, agent endpoint and relay. `startHub` is what main.ts and tests call. */

import { randomUUID } from 'node:crypto';
import type { ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import { MAX_PENDING_CONTROL, RateBuckets } from '@private-connect/protocol';
import type { HubConfig } from './config.js';
import { openDatabase, type Database } from './db/index.js';
import { createLogger, keepOwnAddress, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { installErrorHandler } from './api/error-handler.js';
import { registerRoutes } from './api/routes.js';
import { registerAuthRoutes } from './api/auth-routes.js';
import { registerWorkspaceRoutes } from './api/workspace-routes.js';
import { registerDeviceRoutes } from './api/device-routes.js';
import { registerPages } from './pages/pages.js';
import { createMailer } from './mailer.js';
import { installRateLimits } from './api/rate-limits.js';
import { createFailureLimiter } from './auth/failure-limiter.js';
import { attachAgentEndpoint } from './relay/agent-endpoint.js';
import type { AgentConnection } from './relay/agent-connection.js';
import { controlHandler } from './relay/control-handler.js';
import { cutLinkStreams, cutRevokedAgent, cutShareStreams } from './relay/cuts.js';
import { drainAgents } from './relay/drain.js';
import { lookupMissingService } from './relay/missing-service.js';
import { createRelayStats, type RelayStats } from './relay/relay-stats.js';
import { ServiceRouter } from './relay/router.js';
import { bootstrapIfEmpty, type Bootstrap } from './store/bootstrap.js';
import { closeAllTunnels } from './store/tunnels.js';
import { loadTicketKey } from './store/ticket-key.js';
import { clearAllAdvertised } from './store/direct.js';
import { systemClock, type Clock } from './clock.js';
import { LocalPeer } from './relay/local-peer.js';
import { createAccessLog } from './sharing/access-log.js';
import type { SharingContext } from './sharing/context.js';
import type { HubServices } from './services.js';
import { createHubPorts } from './sharing/hub-ports.js';
import { installFastPath, type FastPath } from './sharing/link-fast.js';
import { createLinkProxy } from './sharing/link-proxy.js';
import { registerLinkRoutes } from './sharing/link-routes.js';
import { linkCache } from './sharing/links.js';
import { registerShareRoutes } from './sharing/share-routes.js';
import { sharedServices } from './sharing/shares.js';
import { createEventBus, type EventBus } from './events.js';
import { registerEventRoutes } from './api/event-routes.js';
import { createSpa, registerSpaAssets } from './pages/spa.js';
import { listenWebPort, type WebPort } from './web-port.js';
import { publicUrls } from './public-urls.js';
import { createHubServer, readTls, reloadTls } from './tls.js';
import { clientAddress, compileTrust } from './client-address.js';
import { createLifecycle, isAccepting, type Lifecycle } from './lifecycle.js';
import { registerOpsRoutes } from './api/ops-routes.js';
import { registerOpenApi } from './api/openapi.js';
import { installAuth } from './auth/auth-plugin.js';
import type { OriginPolicy } from './auth/csrf.js';
import { countAuthFailure } from './relay/relay-stats.js';
import { startCluster, type Cluster, type ClusterOptions } from './cluster/cluster.js';

/**
 * Node's server options that cut slow clients (slowloris) on both ports: HUB_HEADERS_TIMEOUT for the headers (an
 * agent's WebSocket upgrade and a public link's request too), HUB_REQUEST_TIMEOUT for a whole request with its body.
 * Node checks them every 30 s by default, which would let a 1 s timeout run for 30 s: here every half timeout.
 */
export function serverTimeouts(config: Pick<HubConfig, 'headersTimeoutMs' | 'requestTimeoutMs'>): ServerOptions {
  return {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(config.headersTimeoutMs / 2))),
  };
}

export interface Hub {
  /** Base URL of the API and agent endpoint, e.g. http://127.0.0.1:3001 (https:// with TLS_CERT). */
  url: string;
  port: number;
  /** The web port (WEB_PORT): the same application, where the dashboard is opened; undefined with WEB_PORT=off. */
  webPort?: number;
  /** Base URL of the web port, e.g. http://127.0.0.1:3000. */
  webUrl?: string;
  /**
   * The dashboard's URL as a person is shown it (public-urls.ts): HUB_PUBLIC_URL, else the web port on `localhost`
   * (or the bound address). Sign-in, setup, invitation and device links point here.
   */
  dashboardUrl: string;
  /** Agent, service and traffic events per workspace (GET /v1/events). */
  events: EventBus;
  db: Database;
  log: Logger;
  stats: RelayStats;
  /** This hub's place among several (NATS_URL), or undefined for a hub alone. */
  cluster: Cluster | undefined;
  connections: Set<AgentConnection>;
  /** Shares, public links and hub ports: the hub's own stream opener, access log, rate buckets. */
  sharing: SharingContext;
  /** Every HTTP route as `METHOD /path` (HEAD excluded), in registration order: the cross-workspace battery needs a case for each. */
  routes: readonly string[];
  /** Set on the first start with an empty database. */
  bootstrap?: Bootstrap;
  /** starting → ready → draining → closed, as /readyz reports it. */
  lifecycle: Lifecycle;
  /**
   * First half of a graceful shutdown: /readyz turns 503, new agents and streams are refused, every agent gets
   * GOAWAY, and open streams get up to `graceMs` (default SHUTDOWN_GRACE_MS) to finish. Call close() afterwards.
   */
  drain(graceMs?: number): Promise<{ streamsLeft: number }>;
  /** Reads TLS_CERT and TLS_KEY again and serves the new certificate to new connections (SIGHUP). */
  reloadTls(): void;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Logger to use instead of a new one writing JSON to stdout. */
  logger?: Logger;
  /** An already open database (tests); the hub will not close it. */
  db?: Database;
  /** The clock every expiry decision reads (tests pass a ManualClock). */
  clock?: Clock;
  /** Where secrets meant for the operator are printed (sign-in links without SMTP_URL); default stderr. */
  console?: NodeJS.WritableStream;
  /** Heartbeat timing of the cluster (tests). */
  cluster?: Pick<ClusterOptions, 'heartbeatMs' | 'deadAfterMs'>;
}

/** Starts a hub and resolves once it listens. */
export async function startHub(config: HubConfig, options: StartOptions = {}): Promise<Hub> {
  const log = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  // Certificate problems are configuration errors: found before the database is opened.
  const tls = config.tls ? readTls(config.tls) : undefined;
  const trust = compileTrust(config.trustProxy);
  const clientIp = (req: import('node:http').IncomingMessage) => clientAddress(req, trust);
  const lifecycle = createLifecycle();
  const db = options.db ?? (await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }));
  /** This process, among the hubs of the database (the cluster's id for it, and the tunnels it opens). */
  const hubId = randomUUID();
  let cluster: Cluster | undefined;
  try {
    // Tunnels left open by a previous run of this hub cannot be live any more (with several hubs on the database,
    // the others' are: their rows stay).
    if (!config.natsUrl) {
      await closeAllTunnels(db);
      await clearAllAdvertised(db);
    }
    const bootstrap = await bootstrapIfEmpty(db, config.bootstrapApiKey, clock.now());
    // Direct tickets: one key for every hub of the database (made by the first hub that starts).
    const ticketKey = await loadTicketKey(db);
    const router = new ServiceRouter();
    const connections = new Set<AgentConnection>();
    const stats = createRelayStats();
    const events = createEventBus(stats.services);
    let listenUrl = '';
    /** The web port's URL, once it listens (one of the hub's own origins for the CSRF rules). */
    let webUrl: string | undefined;
    /** Where links point (public-urls.ts), once both ports listen; the listen URL until then. */
    let dashboardUrl: string | undefined;
    const origins: OriginPolicy = { configured: () => [config.publicUrl, listenUrl, webUrl, dashboardUrl], publicBaseDomain: config.publicBaseDomain };
    /**
     * What the hub's parts share, built once (services.ts): the relay, sharing, the API and pages, and the cluster each
     * take it as their own deps type. Three members are made from the services and refer to each other (the relay
     * uses hub ports and shared services, hub ports and revocations tell the cluster, the cluster follows both): they
     * are getters, read when used, after they were made below.
     */
    const services: HubServices = {
      hubId,
      db,
      clock,
      config,
      log,
      router,
      stats,
      connections,
      events,
      lifecycle,
      clientIp,
      local: new LocalPeer(stats, log),
      access: createAccessLog(db, log),
      rates: new RateBuckets(),
      control: controlHandler,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      maxPendingControl: MAX_PENDING_CONTROL,
      ticketKey,
      lookupMissingService: (workspaceId, name) => lookupMissingService(db, workspaceId, name),
      traffic: stats.services,
      agentTokenTtlMs: config.agentTokenTtlMs,
      onAuthFailure: (err) => countAuthFailure(stats, err),
      mailer: createMailer({ smtpUrl: config.smtpUrl, smtpFrom: config.smtpFrom, log, console: options.console ?? process.stderr }),
      linkBase: () => dashboardUrl ?? config.publicUrl ?? listenUrl,
      origins,
      tlsPublicUrl: config.publicUrl?.startsWith('https://') ?? false,
      cutAgent: (workspaceId, agentId) => cutRevokedAgent(services, workspaceId, agentId),
      cutRevoked: (kind, id) => {
        if (kind === 'share') return void cutShareStreams(connections, id, 'SHARE_REVOKED', 'the share was revoked by its owner');
        // Refused by this hub's proxy from now on (not waiting for LINK_CACHE_MS), its open requests cut.
        linkCache(services).forget(id);
        cutLinkStreams(services.local, id);
      },
      followHubPort: (port, workspaceId, name, on) =>
        void hubPorts.follow(port, workspaceId, name, on).catch((err: unknown) => log.error({ err, port }, 'following a hub port of another hub failed')),
      get shared() {
        return shared;
      },
      get hubPorts() {
        return hubPorts;
      },
      get cluster() {
        return cluster;
      },
    };
    const shared = sharedServices(services);
    // Listens once started (after the API), on ports from the database's allocations.
    const hubPorts = createHubPorts(services);
    cluster = config.natsUrl ? await startCluster(services, { natsUrl: config.natsUrl, hubId, ...options.cluster }) : undefined;

    // Public links are answered before Fastify routing: their bodies stream through untouched (no body parsing).
    const linkProxy = createLinkProxy(services);
    /** Who holds stream ends besides the agent connections: the hub's own opener, its links to other hubs. */
    const streamHolders = () => [services.local, ...(cluster?.linkPeers() ?? [])];
    // Connections that start with a plain link request skip Node's HTTP server objects (link-fast.ts).
    const fastPaths: FastPath[] = [];
    const fastOptions = { headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs };
    const serverFactory = (handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) => {
      // Fastify sets no timeouts on a server from serverFactory: slow headers and slow bodies (API and public
      // links alike) are cut by the server's own, set explicitly so that they cannot silently change.
      const server = createHubServer(
        tls,
        (req, res) => {
          const link = linkProxy.addressOf(req);
          if (link) linkProxy.handle(req, res, link);
          else handler(req, res);
        },
        serverTimeouts(config),
      );
      fastPaths.push(installFastPath(server, linkProxy, fastOptions));
      return server;
    };
    // trustProxy: the same trust function as the agent endpoint's clientIp. `https` only gives Fastify's own
    // "listening at" line its scheme: the server itself comes from serverFactory.
    const app = Fastify({ serverFactory, loggerInstance: log as FastifyBaseLogger, bodyLimit: 64 * 1024, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: true, trustProxy: trust, ...(tls ? { https: tls } : {}) });
    const routes: string[] = [];
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`);
    });
    const spa = createSpa(config.webDistDir);
    installErrorHandler(app, spa);
    // Before any route: limits are attached to each route as it is registered.
    await installRateLimits(app, config.rateLimits);
    await app.register(fastifyCookie);
    // After the cookie parser (it reads the session cookie) and before any plugin context copies the JSON parser:
    // the session cookie's https name, the CSRF rule and request.principal (auth/auth-plugin.ts).
    installAuth(app, { db, clock, onAuthFailure: services.onAuthFailure, origins, httpsPublicUrl: services.tlsPublicUrl });
    await registerOpenApi(app);
    // Requests refused by a rate limit count as auth failures too (reason rate_limited).
    app.addHook('onError', async (_request, _reply, err) => {
      if ((err as { code?: unknown }).code === 'RATE_LIMITED') countAuthFailure(stats, err);
    });
    registerRoutes(app, services);
    registerEventRoutes(app, services, events);
    registerAuthRoutes(app, services);
    registerWorkspaceRoutes(app, services);
    registerDeviceRoutes(app, services);
    await registerPages(app, services, spa);
    await registerSpaAssets(app, config.webDistDir);
    registerShareRoutes(app, services, services);
    registerLinkRoutes(app, services, services);
    registerOpsRoutes(app, { db, lifecycle, metrics: createMetrics(stats, connections, streamHolders, () => linkProxy.idleStreams), metricsToken: config.metricsToken });
    const endpoint = attachAgentEndpoint(app.server, services, {
      pingIntervalMs: config.pingIntervalMs,
      idleTimeoutMs: config.idleTimeoutMs,
      maxSocketsPerToken: config.maxSocketsPerAgentToken,
      clientIp,
      accepting: () => isAccepting(lifecycle),
      upgradeFailures: createFailureLimiter(config.rateLimits.upgradeFailuresPerIp),
      otherUpgrade: (req, socket, head) => {
        const link = linkProxy.addressOf(req);
        if (!link) return false;
        linkProxy.upgrade(req, socket, head, link);
        return true;
      },
    });

    // The hub's own addresses are logged whole (fastify's line names each address it listens on); clients' stay masked.
    const listenTextResolver = (address: string) => {
      keepOwnAddress(log, new URL(address).host);
      return `Server listening at ${address}`;
    };
    await app.listen({ port: config.port, host: config.host, listenTextResolver });
    const port = (app.server.address() as AddressInfo).port;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    listenUrl = url;
    keepOwnAddress(log, new URL(url).host);
    log.info({ port, url, database: db.kind }, 'hub listening');
    let web: WebPort | undefined;
    if (config.webPort !== undefined) {
      try {
        web = await listenWebPort(app.server, config.webPort, config.webHost, serverTimeouts(config), tls, (server) => fastPaths.push(installFastPath(server, linkProxy, fastOptions)));
        webUrl = web.url;
      } catch (err) {
        events.close();
        await endpoint.close();
        await app.close();
        await cluster?.close();
        throw err;
      }
      keepOwnAddress(log, new URL(web.url).host);
      log.info({ port: web.port, url: web.url }, 'web listening');
    }
    dashboardUrl = publicUrls(config, port, web?.port).dashboard;
    await hubPorts.start();
    lifecycle.state = 'ready';

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      webPort: web?.port,
      webUrl: web?.url,
      dashboardUrl,
      events,
      db,
      log,
      stats,
      cluster,
      connections,
      sharing: services,
      routes,
      bootstrap,
      lifecycle,
      drain(graceMs = config.shutdownGraceMs) {
        return drainAgents(lifecycle, connections, { graceMs, log, peers: streamHolders });
      },
      reloadTls() {
        if (!config.tls) return;
        reloadTls(web ? [app.server, web.server] : [app.server], config.tls);
        log.info('TLS certificate reloaded');
      },
      close() {
        closing ??= (async () => {
          lifecycle.state = 'closed';
          // Event streams never end by themselves: they are ended first, or closing the servers would wait for them.
          events.close();
          for (const fast of fastPaths) fast.shutdown();
          const webClosed = web?.close();
          await hubPorts.close();
          await endpoint.close();
          await app.close();
          await cluster?.close();
          web?.finish();
          await webClosed;
          linkProxy.close();
          await services.access.close();
          if (!options.db) await db.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await cluster?.close().catch(() => undefined);
    if (!options.db) await db.close().catch(() => undefined);
    throw err;
  }
}
