# Stand-in for the official postgres:15-bookworm, for machines that reach no image registry (e2e/container/stand-ins.sh):
# Debian's postgresql-15 on the debootstrapped debian:bookworm-slim, with the interface of the official image that
# compose.yaml uses: POSTGRES_PASSWORD / POSTGRES_USER / POSTGRES_DB / POSTGRES_HOST_AUTH_METHOD, PGDATA as a volume,
# `postgres <args>` as the command, initialisation on an empty PGDATA.
FROM debian:bookworm-slim
# As the official image does: no cluster made by the package, the volume gets one at first start.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/run/postgresql /var/lib/postgresql/data \
 && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql \
 && chmod 3777 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
