#!/usr/bin/env bash
# The Python test tools pinned by tests/s3/requirements.txt: the S3-compatible server the
# blob store tests run against (moto's S3 service) and the Prometheus text parser of the
# metrics test (prometheus-client). Prints ROOKERY_S3_PYTHON=…; see venv-deps.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$repo/scripts/venv-deps.sh" s3 "$repo/tests/s3/requirements.txt" ROOKERY_S3_PYTHON \
  "moto.server, flask, prometheus_client.parser" \
  moto/server.py flask/__init__.py prometheus_client/parser.py
