#!/usr/bin/env bash
# Installs the browser the web-page tests drive: Debian's Chromium (headless), from the
# machine's package manager, when /usr/bin/chromium is missing. puppeteer-core, which
# drives it, comes with the other JS test packages (tests/js/package.json); it downloads
# no browser of its own.
#
# Idempotent; prints ROOKERY_CHROMIUM=/usr/bin/chromium.
set -euo pipefail

log() { printf 'browser-deps: %s\n' "$*" >&2; }

chromium=/usr/bin/chromium
if [[ ! -x "$chromium" ]]; then
  command -v apt-get >/dev/null || { log "no $chromium and no apt-get to install it"; exit 1; }
  log "installing Debian chromium (one-time)"
  sudo_cmd=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { log "installing chromium needs root or sudo"; exit 1; }
    sudo_cmd=(sudo)
  fi
  # Serialise with other installs of this script.
  exec 8>"${TMPDIR:-/tmp}/rookery-browser-deps.lock"
  flock 8
  if [[ ! -x "$chromium" ]]; then
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq >&2 || log "apt-get update failed; trying the cached lists"
    # fonts-noto-cjk: the pages' Simplified Chinese renders in the screenshots.
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >&2
  fi
  [[ -x "$chromium" ]] || { log "chromium missing after install"; exit 1; }
fi
printf 'ROOKERY_CHROMIUM=%s\n' "$chromium"
