#!/usr/bin/env bash
# Quick start, command 2: set up this machine and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/scripts/prepare.sh --for-tests
. deploy/scripts/node-runtime.sh
ensure_node24
# Type-check everything (tests and benchmarks included; the build compiles apps and libs only) and lint.
npm run --silent typecheck
npm run --silent lint
mkdir -p build
set +e
NODE_OPTIONS=--experimental-vm-modules npx jest --ci --json --outputFile=build/jest-results.json "$@"
rc=$?
set -e
# One plain closing line any CI can read.
node -e 'const r=require("./build/jest-results.json"); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' || true
exit $rc
