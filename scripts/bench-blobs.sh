#!/usr/bin/env bash
# Runs `rookery bench blobs` (release build) on the disk blob store and on S3: moto's
# S3-compatible server from the test cache (installed by scripts/s3-deps.sh, as the tests
# do), started on a free 127.0.0.1 port for the run and stopped afterwards.
#
#   scripts/bench-blobs.sh [--volume-mib N]
#
# Needs python3 (for the one-time moto install) and cargo.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

python="$(bash scripts/s3-deps.sh | sed -n 's/^ROOKERY_S3_PYTHON=//p')"
[[ -x "$python" ]] || { echo "bench-blobs: no Python from scripts/s3-deps.sh" >&2; exit 1; }

cargo build --release --quiet

# The server prints S3_URL=… once listening and exits when its stdin closes.
coproc MOTO { exec "$python" tests/s3/moto-server.py; }
moto_pid=$MOTO_PID
trap 'exec {MOTO[1]}>&- 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
url=""
if read -r -t 60 line <&"${MOTO[0]}"; then
  url="${line#S3_URL=}"
fi
[[ "$url" == http://127.0.0.1:* ]] || { echo "bench-blobs: S3 server did not start" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-$repo/target}"
env \
  PDS_BLOBSTORE_S3_BUCKET=rookery-bench \
  PDS_BLOBSTORE_S3_REGION=us-east-1 \
  PDS_BLOBSTORE_S3_ENDPOINT="$url" \
  PDS_BLOBSTORE_S3_FORCE_PATH_STYLE=true \
  PDS_BLOBSTORE_S3_ACCESS_KEY_ID=rookery-bench \
  PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY=rookery-bench-secret \
  "$target/release/rookery" bench blobs "$@"
