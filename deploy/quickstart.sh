#!/usr/bin/env bash
# Quick start, command 1: set up this machine and run the all-in-one cloud (CLC, CC, NC, SC).
# Idempotent: on a running cloud it changes nothing and reports healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/scripts/prepare.sh
export KOALA_HOME=${KOALA_HOME:-/var/lib/koala}
if koala help 2>/dev/null | grep -q '^  bootstrap '; then koala bootstrap; fi
koala up
koala status || true
[ -f "$KOALA_HOME/admin.env" ] && echo "Credentials: source $KOALA_HOME/admin.env" || true
