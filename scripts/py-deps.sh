#!/usr/bin/env bash
# The Python atproto SDK the PLC directory tests resolve DIDs with (its atproto_identity
# resolver), pinned by tests/py/requirements.txt. Prints ROOKERY_ATPROTO_PYTHON=…; see
# venv-deps.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$repo/scripts/venv-deps.sh" py "$repo/tests/py/requirements.txt" ROOKERY_ATPROTO_PYTHON \
  "atproto_identity.did.resolvers.plc_resolver" \
  atproto_identity/did/resolver.py
