#!/usr/bin/env bash
# Installs the Python atproto SDK the PLC directory tests resolve DIDs with (its
# atproto_identity resolver) in a Python virtualenv, pinned by tests/py/requirements.txt,
# from PyPI.
#
# Idempotent: the first run installs into the cache dir, later runs only check a stamp
# (hash of the requirements and this script) and return at once.
#
#   cache dir : ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}/py
#   writes    : <cache>/py/env with ROOKERY_ATPROTO_PYTHON=/abs/venv/bin/python
#   prints    : the same line on stdout (progress goes to stderr)
#
# Needs python3 (3.9 or newer, with venv) on PATH; no stdin.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reqs="$repo/tests/py/requirements.txt"
base="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"

log() { printf 'py-deps: %s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 not found on PATH"; exit 1; }
command -v sha256sum >/dev/null || { log "sha256sum not found on PATH"; exit 1; }

mkdir -p "$base/py"
cache="$(cd "$base/py" && pwd)"
venv="$cache/venv"
python="$venv/bin/python"
stamp_value="$(cat "$reqs" "$0" | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$stamp_value" ]] || return 1
  [[ -x "$python" && -f "$cache/env" ]] || return 1
  compgen -G "$venv/lib/python*/site-packages/atproto_identity/did/resolver.py" >/dev/null
}

# Serialise concurrent callers (several test binaries starting at once).
exec 7>"$cache/.lock"
flock 7

if ! installed_ok; then
  log "installing the Python atproto SDK into $cache (one-time)"
  start=$(date +%s)
  rm -rf "$venv" "$cache/stamp" "$cache/env"
  python3 -m venv "$venv"
  "$python" -m pip install \
    --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --requirement "$reqs" </dev/null >&2
  "$python" -c 'import atproto_identity.did.resolvers.plc_resolver' \
    || { log "atproto_identity did not import after install"; exit 1; }
  tmp="$(mktemp "$cache/env.XXXXXX")"
  printf 'ROOKERY_ATPROTO_PYTHON=%s\n' "$python" >"$tmp"
  mv "$tmp" "$cache/env"
  printf '%s\n' "$stamp_value" >"$cache/stamp"
  log "installed the atproto SDK in $(( $(date +%s) - start ))s"
fi

cat "$cache/env"
