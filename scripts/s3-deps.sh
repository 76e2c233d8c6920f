#!/usr/bin/env bash
# Installs the Python test tools in a virtualenv, pinned by tests/s3/requirements.txt, from
# PyPI: the S3-compatible server the blob store tests run against (moto's S3 service) and
# the Prometheus text parser of the metrics test (prometheus-client).
#
# Idempotent: the first run installs into the cache dir, later runs only check a stamp
# (hash of the requirements and this script) and return at once.
#
#   cache dir : ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}/s3
#   writes    : <cache>/s3/env with ROOKERY_S3_PYTHON=/abs/venv/bin/python
#   prints    : the same line on stdout (progress goes to stderr)
#
# Needs python3 (3.9 or newer, with venv) on PATH; no stdin.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reqs="$repo/tests/s3/requirements.txt"
base="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"

log() { printf 's3-deps: %s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 not found on PATH"; exit 1; }
command -v sha256sum >/dev/null || { log "sha256sum not found on PATH"; exit 1; }

mkdir -p "$base/s3"
cache="$(cd "$base/s3" && pwd)"
venv="$cache/venv"
python="$venv/bin/python"
stamp_value="$(cat "$reqs" "$0" | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$stamp_value" ]] || return 1
  [[ -x "$python" && -f "$cache/env" ]] || return 1
  # Cheap check (no Python start-up): the packages are still on disk.
  compgen -G "$venv/lib/python*/site-packages/moto/server.py" >/dev/null \
    && compgen -G "$venv/lib/python*/site-packages/flask/__init__.py" >/dev/null \
    && compgen -G "$venv/lib/python*/site-packages/prometheus_client/parser.py" >/dev/null
}

# Serialise concurrent callers (several test binaries starting at once).
exec 8>"$cache/.lock"
flock 8

if ! installed_ok; then
  log "installing the S3 test server (moto) into $cache (one-time)"
  start=$(date +%s)
  rm -rf "$venv" "$cache/stamp" "$cache/env"
  python3 -m venv "$venv"
  "$python" -m pip install \
    --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --requirement "$reqs" </dev/null >&2
  "$python" -c 'import moto.server, flask, prometheus_client.parser' \
    || { log "moto or prometheus_client did not import after install"; exit 1; }
  tmp="$(mktemp "$cache/env.XXXXXX")"
  printf 'ROOKERY_S3_PYTHON=%s\n' "$python" >"$tmp"
  mv "$tmp" "$cache/env"
  printf '%s\n' "$stamp_value" >"$cache/stamp"
  log "installed moto in $(( $(date +%s) - start ))s"
fi

cat "$cache/env"
