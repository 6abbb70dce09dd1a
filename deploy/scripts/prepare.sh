#!/usr/bin/env bash
# Shared set-up of both Quick start commands: host services, npm ci, build, and (for the cloud,
# not with --for-tests) the CLI link and the cloud's migrations. Idempotent; safe to run on a
# machine where Koala already runs. A test run (--for-tests) leaves the installed `koala` and the
# running cloud's database as they were: tests use this clone's bin/koala and their own databases.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
FOR_TESTS=0
[ "${1:-}" = --for-tests ] && FOR_TESTS=1

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "run as root (installs packages and starts libvirtd/tgtd)" >&2; exit 1; }
# Node.js 24 LTS: the machine's own when it has it, else installed from the npm registry.
. deploy/scripts/node-runtime.sh
ensure_node24
log "Node.js $(node --version)"

KOALA_TEST_CLIENTS=$FOR_TESTS bash deploy/scripts/host-services.sh

# npm ci only when the lockfile changed since the last install (it wipes node_modules).
stamp=node_modules/.koala-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

log "building"
npm run --silent build

[ "$FOR_TESTS" = 1 ] && exit 0

ln -sf "$ROOT/bin/koala" /usr/local/bin/koala

export KOALA_HOME=${KOALA_HOME:-/var/lib/koala}
mkdir -p "$KOALA_HOME"
log "database migrations"
koala migrate up >/dev/null
