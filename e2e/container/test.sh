#!/usr/bin/env bash
# The container test (.ci/run runs it; outside CI: `npm run test:container`, as root): builds the image from the
# repository's Dockerfile, starts compose.yaml's hub and PostgreSQL, enrols two real agents from this repository's
# CLI against the hub, exposes this machine's PostgreSQL (127.0.0.1:5432) and runs psql through a `connect reach`
# tunnel; then adds the `cluster` profile (a second hub and NATS) and runs psql again through an agent on the
# second hub, so the stream crosses the hubs over NATS. Each hub must stay within compose.yaml's 256 MiB limit:
# never OOM-killed or restarted, its memory (docker stats, and the process's peak RSS) below the limit.
# Everything it made is removed at the end (containers, volumes, the compose project, the hub image); the stand-in
# base images (e2e/container/stand-ins.sh) and a day of build cache stay in the cache folder for the next run.
#
# Installs docker.io, debootstrap and docker-compose from Debian when missing, and starts its own dockerd (data in
# $PRIVATE_CONNECT_CACHE/docker, sockets in a temporary folder, --iptables=false --bridge=none: no bridge, no
# private-range address) when no Docker daemon answers, stopping it at the end. Every container uses the host's
# network; the compose project's PostgreSQL, hubs and NATS get free ports, beside the PostgreSQL and NATS this
# machine already runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cache="${PRIVATE_CONNECT_CACHE:-$HOME/.cache/private-connect}"
MEM_LIMIT_BYTES=$((256 * 1024 * 1024))
started=$SECONDS
log() { printf 'container-test: [%3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1; }

# --- tools -----------------------------------------------------------------------------------------------------
missing=()
{ need dockerd && need docker; } || missing+=(docker.io)
need debootstrap || missing+=(debootstrap)
need docker-compose || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
need psql || missing+=(postgresql-client)
if [ "${#missing[@]}" -gt 0 ]; then
  need apt-get || fail "missing ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]}"
  (apt-get update -qq || true) >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if docker compose version >/dev/null 2>&1; then compose_cmd=(docker compose); else compose_cmd=(docker-compose); fi

# --- everything made here is undone on exit --------------------------------------------------------------------
run_dir="$(mktemp -d /tmp/pc-container.XXXXXX)"
project="pc-container-$$"
export HUB_IMAGE="private-connect-hub:test-$$"
agent_pids=()
dockerd_pid=""
compose() { COMPOSE_PROFILES=cluster "${compose_cmd[@]}" -p "$project" -f "$root/compose.yaml" "$@"; }
cleanup() {
  local status=$?
  set +e
  for pid in "${agent_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${agent_pids[@]}"; do wait "$pid" 2>/dev/null; done
  if [ -n "${compose_started:-}" ]; then
    [ "$status" -ne 0 ] && compose logs --no-color --tail 60 >&2 2>&1
    compose down --volumes --remove-orphans --timeout 25 >/dev/null 2>&1
    docker image rm "$HUB_IMAGE" >/dev/null 2>&1
    left="$(docker ps -aq --filter "label=com.docker.compose.project=$project"; docker volume ls -q --filter "label=com.docker.compose.project=$project")"
    [ -z "$left" ] || { log "left behind: $left"; status=1; }
  fi
  if [ -n "$dockerd_pid" ]; then
    # Our own daemon's folder is a cache: the last day's build layers stay (a rebuild skips npm ci), older ones go.
    docker image prune -f --filter until=24h >/dev/null 2>&1
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && { log "dockerd did not stop; killing it"; kill -9 "$dockerd_pid"; }
    # dockerd leaves its network namespace mounted in the exec root (exec/netns/default).
    awk -v d="$run_dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  fi
  rm -rf "$run_dir"
  log "$([ "$status" -eq 0 ] && echo passed || echo failed) in $((SECONDS - started)) s"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a Docker daemon: the one that answers, or our own ---------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  mkdir -p "$cache/docker"
  export DOCKER_HOST="unix://$run_dir/docker.sock"
  log "starting dockerd (data in $cache/docker)"
  dockerd --data-root "$cache/docker" --exec-root "$run_dir/exec" --pidfile "$run_dir/dockerd.pid" \
    -H "$DOCKER_HOST" --iptables=false --ip6tables=false --ip-masq=false --bridge=none >"$run_dir/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$run_dir/dockerd.log" >&2; fail "dockerd did not start"; }
fi

# --- images ----------------------------------------------------------------------------------------------------
t=$SECONDS
"$root/e2e/container/stand-ins.sh"
log "base images ready ($((SECONDS - t)) s)"

free_ports() {
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]);
    const servers = [];
    (async () => {
      for (let i = 0; i < n; i++) servers.push(await new Promise((ok) => { const s = net.createServer().listen(0, "127.0.0.1", () => ok(s)); }));
      console.log(servers.map((s) => s.address().port).join(" "));
      for (const s of servers) s.close();
    })();' "$1"
}
read -r POSTGRES_PORT HUB_PORT WEB_PORT HUB_B_PORT NATS_PORT REACH_PORT REACH_B_PORT < <(free_ports 7)
export POSTGRES_PORT HUB_PORT WEB_PORT HUB_B_PORT NATS_PORT
export POSTGRES_PASSWORD="$(node -e 'console.log(require("node:crypto").randomBytes(16).toString("hex"))')"
export HUB_HOST=127.0.0.1 NATS_URL=""

t=$SECONDS
log "building $HUB_IMAGE from the Dockerfile (compose build)"
compose_started=1
compose build hub >"$run_dir/build.log" 2>&1 || { tail -40 "$run_dir/build.log" >&2; fail "the image did not build"; }
log "image built ($((SECONDS - t)) s, $(docker image inspect -f '{{.Size}}' "$HUB_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
user="$(docker image inspect -f '{{.Config.User}}' "$HUB_IMAGE")"
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || fail "the image runs as \"$user\", not as an unprivileged user"

# --- helpers on the running project ----------------------------------------------------------------------------
container_of() { compose ps -q "$1"; }
wait_healthy() {
  local id status
  id="$(container_of "$1")"
  [ -n "$id" ] || fail "no container for $1"
  for _ in $(seq 1 180); do
    status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")"
    [ "$status" = healthy ] && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ] || break
    sleep 1
  done
  docker logs --tail 40 "$id" >&2 2>&1
  fail "$1 is not healthy (state: $status)"
}
CONNECT=(node "$root/apps/connect/bin/connect.js")
[ -f "$root/apps/connect/dist/src/main.js" ] || (npx tsc -b apps/connect) || fail "could not build the connect CLI"
agent() { local home="$1"; shift; CONNECT_HOME="$run_dir/$home" "${CONNECT[@]}" "$@"; }
background_agent() {
  local home="$1" name="$2"; shift 2
  CONNECT_HOME="$run_dir/$home" "${CONNECT[@]}" "$@" >"$run_dir/$name.log" 2>&1 &
  agent_pids+=($!)
}
psql_through() {
  local port="$1" i
  for i in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -t 2 && break; sleep 0.5; done
  psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc "select 'through the tunnel', current_setting('port')"
}
# Checks a hub's container against the limit; prints "docker stats usage / peak RSS" for the report.
check_memory() {
  local id pid oom restarts stats usage hwm
  id="$(container_of "$1")"
  pid="$(docker inspect -f '{{.State.Pid}}' "$id")"
  oom="$(docker inspect -f '{{.State.OOMKilled}}' "$id")"
  restarts="$(docker inspect -f '{{.RestartCount}}' "$id")"
  [ "$(docker inspect -f '{{.HostConfig.Memory}}' "$id")" = "$MEM_LIMIT_BYTES" ] || fail "$1 does not run with the 256 MiB limit"
  [ "$oom" = false ] && [ "$restarts" = 0 ] || fail "$1 was OOM-killed or restarted (OOMKilled=$oom, restarts=$restarts)"
  stats="$(docker stats --no-stream --format '{{.MemUsage}}' "$id")"
  # "123.4MiB / 256MiB" → bytes of the first figure
  usage="$(awk '{ v = $1 + 0; u = $1; sub(/^[0-9.]+/, "", u);
    m = (u == "KiB") ? 1024 : (u == "MiB") ? 1048576 : (u == "GiB") ? 1073741824 : (u == "B") ? 1 : -1;
    if (m > 0) printf "%d", v * m }' <<<"$stats")"
  [ -n "$usage" ] && [ "$usage" -lt "$MEM_LIMIT_BYTES" ] || fail "$1 uses $stats, not below 256 MiB"
  hwm="$(awk '/^VmHWM:/ {printf "%.0f MiB", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "?")"
  log "$1: memory $stats (docker stats), peak RSS of its node process $hwm, not OOM-killed, not restarted"
}

# --- one hub on PostgreSQL -------------------------------------------------------------------------------------
t=$SECONDS
compose up -d postgres hub >"$run_dir/up.log" 2>&1 || { cat "$run_dir/up.log" >&2; fail "compose up failed"; }
wait_healthy postgres
wait_healthy hub
log "postgres and hub healthy (HEALTHCHECK on /readyz) $((SECONDS - t)) s after compose up"
key="$(docker logs "$(container_of hub)" 2>&1 | grep -oE 'pc_[A-Za-z0-9]{32}' | head -1)"
[ -n "$key" ] || fail "no API key in the hub's first-start output"

hub_a="http://127.0.0.1:$HUB_PORT"
agent server up --hub "$hub_a" --api-key "$key" --label container-server >/dev/null
agent laptop up --hub "$hub_a" --api-key "$key" --label container-laptop >/dev/null
background_agent server expose expose 127.0.0.1:5432 --name host-db
# reach refuses a name the hub does not know yet: wait until the exposing agent has announced it.
for _ in $(seq 1 60); do agent laptop ls --json 2>/dev/null | grep -q '"host-db"' && break; sleep 0.5; done
background_agent laptop reach reach host-db --port "$REACH_PORT"
answer="$(psql_through "$REACH_PORT")" || { cat "$run_dir"/expose.log "$run_dir"/reach.log >&2; fail "psql through the tunnel failed"; }
[ "$answer" = "through the tunnel|5432" ] || fail "psql answered \"$answer\""
log "psql through connect reach → hub container → this machine's PostgreSQL: $answer"
check_memory hub

# --- the cluster profile: a second hub and NATS; a stream across the hubs --------------------------------------
t=$SECONDS
export NATS_URL="nats://127.0.0.1:$NATS_PORT"
# The first hub is recreated with NATS_URL; its agents reconnect by themselves.
compose up -d >"$run_dir/up-cluster.log" 2>&1 || { cat "$run_dir/up-cluster.log" >&2; fail "compose up --profile cluster failed"; }
wait_healthy hub
wait_healthy hub-b
log "cluster profile: hub and hub-b healthy over NATS $((SECONDS - t)) s after compose up"
agent far up --hub "http://127.0.0.1:$HUB_B_PORT" --api-key "$key" --label container-far >/dev/null
background_agent far reach-b reach host-db --port "$REACH_B_PORT"
answer="$(psql_through "$REACH_B_PORT")" || { cat "$run_dir"/expose.log "$run_dir"/reach-b.log >&2; fail "psql across the hubs failed"; }
[ "$answer" = "through the tunnel|5432" ] || fail "psql across the hubs answered \"$answer\""
# The stream really crossed: the exposing agent is on the first hub, the reaching one on the second.
grep -q "127.0.0.1:$HUB_B_PORT" "$run_dir/far/config.json" || fail "the far agent is not enrolled on hub-b"
log "psql through an agent on hub-b → NATS → hub → exposing agent: $answer"
check_memory hub
check_memory hub-b
