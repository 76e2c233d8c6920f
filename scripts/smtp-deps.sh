#!/usr/bin/env bash
# Installs the SMTP server the mail tests deliver to: aiosmtpd in a Python virtualenv,
# pinned by tests/smtp/requirements.txt, from PyPI.
#
# Idempotent: the first run installs into the cache dir, later runs only check a stamp
# (hash of the requirements and this script) and return at once.
#
#   cache dir : ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}/smtp
#   writes    : <cache>/smtp/env with ROOKERY_SMTP_PYTHON=/abs/venv/bin/python
#   prints    : the same line on stdout (progress goes to stderr)
#
# Needs python3 (3.9 or newer, with venv) on PATH; no stdin.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reqs="$repo/tests/smtp/requirements.txt"
base="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"

log() { printf 'smtp-deps: %s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 not found on PATH"; exit 1; }
command -v sha256sum >/dev/null || { log "sha256sum not found on PATH"; exit 1; }

mkdir -p "$base/smtp"
cache="$(cd "$base/smtp" && pwd)"
venv="$cache/venv"
python="$venv/bin/python"
stamp_value="$(cat "$reqs" "$0" | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$stamp_value" ]] || return 1
  [[ -x "$python" && -f "$cache/env" ]] || return 1
  compgen -G "$venv/lib/python*/site-packages/aiosmtpd/smtp.py" >/dev/null
}

# Serialise concurrent callers (several test binaries starting at once).
exec 8>"$cache/.lock"
flock 8

if ! installed_ok; then
  log "installing the SMTP test server (aiosmtpd) into $cache (one-time)"
  start=$(date +%s)
  rm -rf "$venv" "$cache/stamp" "$cache/env"
  python3 -m venv "$venv"
  "$python" -m pip install \
    --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --requirement "$reqs" </dev/null >&2
  "$python" -c 'import aiosmtpd.smtp' \
    || { log "aiosmtpd did not import after install"; exit 1; }
  tmp="$(mktemp "$cache/env.XXXXXX")"
  printf 'ROOKERY_SMTP_PYTHON=%s\n' "$python" >"$tmp"
  mv "$tmp" "$cache/env"
  printf '%s\n' "$stamp_value" >"$cache/stamp"
  log "installed aiosmtpd in $(( $(date +%s) - start ))s"
fi

cat "$cache/env"
