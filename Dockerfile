# The hub as a container image: `docker build -t private-connect-hub .` (compose.yaml builds it for you).
# Three stages: `build` compiles the hub and the dashboard, `deps` installs the hub's production dependencies only,
# the last one holds just what runs. No BuildKit-only syntax, so the legacy builder builds it too.

FROM node:24-bookworm-slim AS build
WORKDIR /src
# Manifests first: the npm ci layer is reused until a package.json or the lock changes.
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/tunnel/package.json packages/tunnel/
COPY packages/api/package.json packages/api/
COPY packages/sdk/package.json packages/sdk/
COPY apps/hub/package.json apps/hub/
COPY apps/connect/package.json apps/connect/
COPY apps/web/package.json apps/web/
COPY e2e/package.json e2e/
COPY bench/package.json bench/
COPY examples/staging-db-tests/package.json examples/staging-db-tests/
COPY examples/webhook-link/package.json examples/webhook-link/
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
# The project's own build (everything `npm start` builds, whatever it makes for the hub); the hub's tests stay here.
RUN npm run build && rm -rf apps/hub/dist/test

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/packages/protocol/package.json packages/protocol/
COPY --from=build /src/packages/tunnel/package.json packages/tunnel/
COPY --from=build /src/packages/api/package.json packages/api/
COPY --from=build /src/packages/sdk/package.json packages/sdk/
COPY --from=build /src/apps/hub/package.json apps/hub/
COPY --from=build /src/apps/connect/package.json apps/connect/
COPY --from=build /src/apps/web/package.json apps/web/
COPY --from=build /src/e2e/package.json e2e/
COPY --from=build /src/bench/package.json bench/
COPY --from=build /src/examples/staging-db-tests/package.json examples/staging-db-tests/
COPY --from=build /src/examples/webhook-link/package.json examples/webhook-link/
# The hub's dependency tree without dev tools (native addons come as N-API prebuilds: no compiler needed).
RUN npm ci --omit=dev --workspace apps/hub --no-audit --no-fund --loglevel=error \
 && rm -rf apps/connect apps/web e2e bench examples

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HUB_DATA_DIR=/data \
    HUB_PORT=3001 \
    WEB_PORT=3000
WORKDIR /app
COPY --from=deps /app/package.json ./
COPY --from=deps /app/node_modules node_modules
COPY --from=build /src/packages/protocol/package.json packages/protocol/
COPY --from=build /src/packages/protocol/dist/src packages/protocol/dist/src
COPY --from=build /src/packages/api/package.json packages/api/
COPY --from=build /src/packages/api/dist/src packages/api/dist/src
COPY --from=build /src/packages/tunnel/package.json packages/tunnel/
COPY --from=build /src/packages/tunnel/dist/src packages/tunnel/dist/src
COPY --from=build /src/apps/hub/package.json apps/hub/
COPY --from=build /src/apps/hub/bin apps/hub/bin
COPY --from=build /src/apps/hub/migrations apps/hub/migrations
COPY --from=build /src/apps/hub/dist apps/hub/dist
COPY --from=build /src/apps/web/dist apps/web/dist
# The embedded database's folder (unused with DATABASE_URL), owned by the unprivileged user the hub runs as.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 3001 3000
# /readyz: 200 once the database answers and the hub takes agents, 503 while starting or draining.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["sh", "/app/apps/hub/bin/healthcheck.sh"]
# node itself, not npm: SIGTERM reaches the hub, which drains (SHUTDOWN_GRACE_MS) before it exits.
CMD ["node", "apps/hub/dist/src/main.js"]
