#!/usr/bin/env bash
# The SMTP server the mail tests deliver to (aiosmtpd), pinned by tests/smtp/requirements.txt.
# Prints ROOKERY_SMTP_PYTHON=…; see venv-deps.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$repo/scripts/venv-deps.sh" smtp "$repo/tests/smtp/requirements.txt" ROOKERY_SMTP_PYTHON \
  "aiosmtpd.smtp" \
  aiosmtpd/smtp.py
