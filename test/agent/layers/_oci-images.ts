// The real application images the oci-*.test.ts files run, built from Debian's packages by
// test/_debian-image.ts (cached by package versions): each config is what the official
// image's Dockerfile sets, with Debian's packages in place of the upstream builds.

/** redis-server as the official redis image runs it (User redis where it uses gosu). */
export const REDIS = {
  packages: ['redis-server'],
  config: [
    ['cmd', 'redis-server'],
    ['cmd', '--protected-mode'],
    ['cmd', 'no'],
    ['user', 'redis'],
    ['workingdir', '/data'],
    ['volume', '/data'],
    ['exposedports', '6379/tcp'],
    ['env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  ] as [string, string][],
};

export const PASSWORD = 'mway-test-secret';

// As the official image's docker-entrypoint.sh: as root, make $PGDATA the postgres user's and
// re-run as that user; as postgres, initialise an empty $PGDATA (password auth over TCP),
// then exec the command.
const ENTRYPOINT = `#!/bin/sh
set -eu
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\\n' "$POSTGRES_PASSWORD" > "$pw"
  initdb --username=postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA"
  rm -f "$pw"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
fi
exec "$@"
`;

/** postgresql-15 with an entrypoint doing what the official image's docker-entrypoint.sh does. */
export const POSTGRES = {
  packages: ['postgresql-15'],
  files: { 'usr/local/bin/docker-entrypoint.sh': { text: ENTRYPOINT, mode: 0o755 } },
  config: [
    ['entrypoint', 'docker-entrypoint.sh'],
    ['cmd', 'postgres'],
    ['env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin'],
    ['env', 'PGDATA=/var/lib/postgresql/data'],
    ['env', `POSTGRES_PASSWORD=${PASSWORD}`],
    ['volume', '/var/lib/postgresql/data'],
    ['exposedports', '5432/tcp'],
    ['stopsignal', 'SIGINT'],
  ] as [string, string][],
};
