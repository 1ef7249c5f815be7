// The real application images the oci-*.test.ts files run, built from Debian's packages by
// test/_debian-image.ts (cached by package versions): each config is what the official
// image's Dockerfile sets, with Debian's packages in place of the upstream builds.

/**
 * nginx-light as the official nginx image runs it (Entrypoint nginx, Cmd -g "daemon off;",
 * ExposedPorts 80/tcp, StopSignal SIGQUIT), its html folder a Volume.
 */
export const NGINX = {
  packages: ['nginx-light'],
  config: [
    ['entrypoint', 'nginx'],
    ['cmd', '-g'],
    ['cmd', 'daemon off;'],
    ['exposedports', '80/tcp'],
    ['stopsignal', 'SIGQUIT'],
    ['env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ['workingdir', '/'],
    ['volume', '/var/www/html'],
  ] as [string, string][],
};

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
// re-run as that user; as postgres, initialise an empty $PGDATA (password auth over TCP from
// any address, as its pg_hba.conf line does: a client through QEMU's forward comes from
// 10.0.2.2), then exec the command.
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
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
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

// A small web app in Python talking to the database through psycopg2 (Debian's packages): on
// each start it records the start in a table, and GET / answers with how many there are.
const APP = `import http.server, os
import psycopg2

conn = psycopg2.connect(os.environ["DATABASE_URL"])
conn.autocommit = True
with conn.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS starts (at timestamptz DEFAULT now())")
    c.execute("INSERT INTO starts DEFAULT VALUES")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with conn.cursor() as c:
            c.execute("SELECT count(*) FROM starts")
            body = f"starts={c.fetchone()[0]}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
`;

/** python3 with psycopg2 and the app, run as nobody (the image's own passwd). */
export const PYAPP = {
  packages: ['python3-psycopg2'],
  files: { 'app/app.py': { text: APP, mode: 0o644 } },
  config: [
    ['cmd', 'python3'],
    ['cmd', '-u'],
    ['cmd', '/app/app.py'],
    ['user', 'nobody'],
    ['workingdir', '/app'],
    ['exposedports', '8000/tcp'],
    ['env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  ] as [string, string][],
};
