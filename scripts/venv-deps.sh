#!/usr/bin/env bash
# Installs one set of Python test tools in a virtualenv of the test cache, pinned by a
# requirements file, from PyPI. Called by s3-deps.sh, py-deps.sh and smtp-deps.sh.
#
# Usage: venv-deps.sh NAME REQUIREMENTS ENV_VAR MODULES [FILE_GLOB...]
#   NAME         cache subdirectory: ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}/NAME
#   REQUIREMENTS the pinned requirements file
#   ENV_VAR      written to <cache>/NAME/env as ENV_VAR=/abs/venv/bin/python
#   MODULES      comma-separated modules that must import after the install
#   FILE_GLOB    files (relative to site-packages) whose presence says the install is intact
#
# Idempotent: the first run installs, later runs only check a stamp (hash of the
# requirements, the arguments and this script) and the files, and return at once.
# Prints the env line on stdout (progress goes to stderr). Needs python3 with venv; no stdin.
set -euo pipefail

name="$1" reqs="$2" var="$3" modules="$4"
shift 4
base="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"

log() { printf '%s-deps: %s\n' "$name" "$*" >&2; }

command -v python3 >/dev/null || { log "python3 not found on PATH"; exit 1; }
command -v sha256sum >/dev/null || { log "sha256sum not found on PATH"; exit 1; }

mkdir -p "$base/$name"
cache="$(cd "$base/$name" && pwd)"
venv="$cache/venv"
python="$venv/bin/python"
stamp_value="$( (cat "$reqs" "$0"; printf '%s\n' "$var" "$modules" "$@") | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [[ -f "$cache/stamp" && "$(cat "$cache/stamp")" == "$stamp_value" ]] || return 1
  [[ -x "$python" && -f "$cache/env" ]] || return 1
  # Cheap check (no Python start-up): the packages are still on disk.
  local glob
  for glob in "$@"; do
    compgen -G "$venv/lib/python*/site-packages/$glob" >/dev/null || return 1
  done
}

# Serialise concurrent callers.
exec 8>"$cache/.lock"
flock 8

if ! installed_ok "$@"; then
  log "installing $(basename "$reqs") into $cache (one-time)"
  start=$(date +%s)
  rm -rf "$venv" "$cache/stamp" "$cache/env"
  python3 -m venv "$venv"
  "$python" -m pip install \
    --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --requirement "$reqs" </dev/null >&2
  "$python" -c "import $modules" || { log "$modules did not import after install"; exit 1; }
  tmp="$(mktemp "$cache/env.XXXXXX")"
  printf '%s=%s\n' "$var" "$python" >"$tmp"
  mv "$tmp" "$cache/env"
  printf '%s\n' "$stamp_value" >"$cache/stamp"
  log "installed in $(( $(date +%s) - start ))s"
fi

cat "$cache/env"
