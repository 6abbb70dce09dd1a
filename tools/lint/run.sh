#!/bin/sh
# `npm run lint`: installs the lint tools when their lockfile changed, then runs type-aware ESLint
# over apps, libs, test and bench, then Prettier's check of the same files (`npm run format` fixes).
set -eu
cd "$(dirname "$0")"
stamp=node_modules/.koala-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
cd ../..
tools/lint/node_modules/.bin/eslint --config tools/lint/eslint.config.js --max-warnings 0 .
tools/lint/node_modules/.bin/prettier --config tools/lint/prettier.config.js --check --log-level warn "apps/**/*.ts" "libs/**/*.ts" "test/**/*.ts" "bench/**/*.ts" \
  || { echo 'formatting differs: run `npm run format`' >&2; exit 1; }
