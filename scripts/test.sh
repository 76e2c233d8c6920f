#!/usr/bin/env bash
# The project's test command (README). Installs the real external components the interop
# tests run against (Node 22, the PLC directory, the official atproto clients; cached after
# the first run, see scripts/test-deps.sh) and the reference PDS of the migration tests
# (scripts/refpds-deps.sh), then builds once and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/test-deps.sh >/dev/null
./scripts/refpds-deps.sh >/dev/null
cargo test --all-targets --locked "$@"
