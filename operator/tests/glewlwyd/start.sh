#!/usr/bin/env bash
# Nauthera's second test provider: a throwaway Glewlwyd (Debian package `glewlwyd`) on
# 127.0.0.1:PORT, in the foreground, with RFC 7591 registration (initial access token by a
# client_credentials grant of the client dcr-bootstrap) and RFC 7592 management.
#
#   start.sh PORT STATE_DIR
#
# Prints one line "GLEWLWYD_READY issuer=…" once discovery answers, or "GLEWLWYD_FAILED …".
# It execs glewlwyd, so the spawned PID is the server. Logs go to STATE_DIR/glewlwyd.log.
# Needs glewlwyd, sqlite3, openssl and curl (./test.sh installs them as root).
set -euo pipefail

PORT="${1:?usage: $0 PORT STATE_DIR}"
STATE_DIR="${2:?usage: $0 PORT STATE_DIR}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INIT_SQL_GZ=/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz
INIT_SQL_PLAIN=/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3

for tool in glewlwyd sqlite3 openssl curl; do
  command -v "$tool" >/dev/null || { echo "GLEWLWYD_FAILED $tool is not installed"; exit 2; }
done
mkdir -p "$STATE_DIR/keys"
ISSUER="http://127.0.0.1:${PORT}/api/oidc"

# A signing key of its own, for this run only.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$STATE_DIR/keys/private.pem" 2>/dev/null
openssl pkey -in "$STATE_DIR/keys/private.pem" -pubout -out "$STATE_DIR/keys/public.pem"

# A fresh database from the package's schema (one transaction: fsyncs per statement
# would take seconds), then the plugin and the bootstrap client.
{
  echo 'PRAGMA synchronous=OFF; BEGIN;'
  if [[ -f "$INIT_SQL_GZ" ]]; then zcat "$INIT_SQL_GZ"; else cat "$INIT_SQL_PLAIN"; fi
  sed -e "s#@ISSUER@#${ISSUER}#g" -e "s#@KEYS_DIR@#${STATE_DIR}/keys#g" -e "s#@TOKEN_ONE_USE@#false#g" \
    "$HERE/bootstrap.sql.template"
  echo 'COMMIT;'
} | sqlite3 -bail "$STATE_DIR/glewlwyd.db"
sed -e "s#@PORT@#${PORT}#g" -e "s#@STATE_DIR@#${STATE_DIR}#g" \
  "$HERE/glewlwyd.conf.template" > "$STATE_DIR/glewlwyd.conf"

# Ready once discovery answers; the watcher stops if the server dies.
SELF=$$
(
  for _ in $(seq 1 300); do
    [[ -r /proc/$SELF/stat ]] || { echo "GLEWLWYD_FAILED the server exited (see $STATE_DIR/glewlwyd.log)"; exit 1; }
    if curl -fsS -o /dev/null --max-time 1 "$ISSUER/.well-known/openid-configuration" 2>/dev/null; then
      echo "GLEWLWYD_READY issuer=${ISSUER}"
      exit 0
    fi
    sleep 0.1
  done
  echo "GLEWLWYD_FAILED no answer within 30 s (see $STATE_DIR/glewlwyd.log)"
) &

cd "$STATE_DIR"
exec glewlwyd --config-file="$STATE_DIR/glewlwyd.conf" --log-mode=file \
  --log-file="$STATE_DIR/glewlwyd.log" --log-level=INFO
