#!/usr/bin/env bash
# Self-test of the JS interop harness: installs the pinned JS dependencies
# (scripts/test-deps.sh), starts the real PLC directory on 127.0.0.1
# (tests/js/plc-server.mjs), runs tests/js/plc-smoke.mjs against it, stops it.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"

# test-deps.sh prints ROOKERY_NODE=... and ROOKERY_JS=... lines.
while IFS='=' read -r key value; do
  case "$key" in
    ROOKERY_NODE | ROOKERY_JS) export "$key=$value" ;;
  esac
done < <("$repo/scripts/test-deps.sh")
: "${ROOKERY_NODE:?test-deps.sh did not report ROOKERY_NODE}"
: "${ROOKERY_JS:?test-deps.sh did not report ROOKERY_JS}"

# The server gets a pipe as stdin and exits when we close it; it prints
# PLC_URL=... on stdout once it is listening.
coproc PLC { exec "$ROOKERY_NODE" "$repo/tests/js/plc-server.mjs" 0; }
# shellcheck disable=SC2153 # PLC_PID is set by coproc
plc_pid=$PLC_PID
plc_in=${PLC[1]}
plc_out=${PLC[0]}

# Safety net for early exits: never leave the server running.
kill_server() {
  kill -TERM "$plc_pid" 2>/dev/null || true
  wait "$plc_pid" 2>/dev/null || true
}
trap kill_server EXIT

line=""
if ! IFS= read -r -t 60 line <&"$plc_out"; then
  echo "js-smoke: PLC server did not report its URL" >&2
  exit 1
fi
case "$line" in
  PLC_URL=http://127.0.0.1:*) plc_url="${line#PLC_URL=}" ;;
  *) echo "js-smoke: unexpected first line from PLC server: $line" >&2; exit 1 ;;
esac

"$ROOKERY_NODE" "$repo/tests/js/plc-smoke.mjs" "$plc_url"

# Stop the server the way a test harness does: close its stdin. Its stdout
# then reaches EOF (read returns 1; a timeout would return >128).
eval "exec ${plc_in}>&-"
st=0
while :; do
  IFS= read -r -t 10 -u "$plc_out" _ 2>/dev/null || { st=$?; break; }
done
if ((st > 128)); then
  echo "js-smoke: PLC server did not exit when its stdin was closed" >&2
  exit 1
fi
wait "$plc_pid" 2>/dev/null || true
trap - EXIT
