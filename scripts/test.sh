#!/usr/bin/env bash
# The project's test command (README). Installs the real external components the interop
# tests run against (Node 22, the PLC directory, the official atproto clients; cached after
# the first run, see scripts/test-deps.sh) and the reference PDS of the migration tests
# (scripts/refpds-deps.sh), then builds once and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/test-deps.sh >/dev/null
./scripts/refpds-deps.sh >/dev/null
# Two test threads per core: many tests spend much of their time waiting on child processes
# (Node clients, the reference PDS, Chromium) and sockets. On two cores, 4 threads instead of
# 2 run the suite in 78 s instead of 95 s. RUST_TEST_THREADS set by the caller wins.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-$((2 * $(nproc)))}"
# The tests run on the system allocator (`--no-default-features` drops only the cargo feature
# `alloc-jemalloc`, the binary's `#[global_allocator]`): building jemalloc from C is 73 s of a
# clean two-core build and on its critical path. `.ci/run`'s clippy pass still builds and
# lints the default features.
cargo test --all-targets --locked --no-default-features "$@"
