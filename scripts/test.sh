#!/usr/bin/env bash
# The project's test command (README). Builds once and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets --locked "$@"
