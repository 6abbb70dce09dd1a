#!/usr/bin/env bash
# Builds and runs bench/libvirt-rpc.bench.ts (see the comment at its top).
# Usage: bash bench/libvirt-rpc.bench.sh   [env: LIBVIRT_URI, BENCH_MS, BENCH_IN_FLIGHT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=node_modules/.cache/koala-libvirt-bench
npx tsc -p bench/tsconfig.libvirt-bench.json
mkdir -p "$out/node_modules/@koala/libvirt"
echo '{"name":"@koala/libvirt","type":"module","main":"index.js"}' > "$out/node_modules/@koala/libvirt/package.json"
echo "export * from '../../../libs/libvirt/src/index.js';" > "$out/node_modules/@koala/libvirt/index.js"
echo '{"type":"module"}' > "$out/package.json"
exec node "$out/bench/libvirt-rpc.bench.js"
