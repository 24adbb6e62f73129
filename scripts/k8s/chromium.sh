#!/usr/bin/env bash
# Debian's Chromium, and certutil to give it a CA, for the UI scenario of the real one-node cluster
# (tests/k8s-real/ui.ts drives it with playwright-core). Installs them when missing (root, apt);
# prints Chromium's path last.
set -euo pipefail
log() { printf '[chromium] %s\n' "$*" >&2; }
# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/apt.sh"
ensure_apt chromium libnss3-tools
command -v certutil >/dev/null || { log "certutil is missing after installing libnss3-tools"; exit 1; }
command -v chromium
