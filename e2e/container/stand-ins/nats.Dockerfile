# Stand-in for the official nats:2, for machines that reach no image registry (e2e/container/stand-ins.sh): Debian's
# nats-server on the debootstrapped debian:bookworm-slim, as the entrypoint (the official image's entrypoint is the
# server too, so compose.yaml's `command:` holds only its flags).
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >/dev/null \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/sbin/nats-server"]
EXPOSE 4222
CMD ["-a", "127.0.0.1", "-p", "4222"]
