#!/bin/sh
# The container image's HEALTHCHECK: exit 0 when the hub's /readyz answers 200 on HUB_PORT.
# Over plain HTTP with bash's /dev/tcp (a check every 10 s should not start a Node process in a memory-limited
# container); with TLS_CERT set the port speaks only TLS, so Node does the request then (certificate not checked:
# it is the hub's own, reached on its own address).
port="${HUB_PORT:-3001}"
host="${HUB_HOST:-127.0.0.1}"
case "$host" in 0.0.0.0|::|'[::]') host=127.0.0.1 ;; esac
if [ -n "${TLS_CERT:-}" ]; then
  exec node -e "require('node:https').get({host: process.argv[1], port: process.argv[2], path: '/readyz', rejectUnauthorized: false, timeout: 4000}, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))" "$host" "$port"
fi
exec bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "' "$host" "$port"
