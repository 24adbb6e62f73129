#!/usr/bin/env bash
# moto.sh — install (once) moto's S3 server into a cached virtualenv, for the snapshot suite's
# S3-compatible bucket (tests/e2e/snapshot.e2e.ts). PyPI through pip, pinned.
#
# What: ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/moto-<version>/ (a venv); a .complete file
# marks a finished install, so a half-built one is never used. Needs python3 with venv and ensurepip
# (Debian: python3-venv, installed here with apt-get when missing and run as root).
# Prints the venv's path as the last line on stdout (bin/moto_server, and bin/python with boto3);
# progress goes to stderr.
set -euo pipefail

MOTO_VERSION=5.2.1
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
VENV="$CACHE_ROOT/moto-$MOTO_VERSION"

log() { printf '[moto] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -e "$VENV/.complete" ]]; then
  log "cached: $VENV"
  printf '%s\n' "$VENV"
  exit 0
fi

# The system python (not a pyenv shim that may lack venv), else whatever python3 is on PATH.
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)" || die "python3 is not installed"
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "$PYTHON lacks venv/ensurepip; install python3-venv"
  fi
  # shellcheck source=scripts/e2e/apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
  ensure_apt python3-venv
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.moto.lock"
flock 9
if [[ -e "$VENV/.complete" ]]; then
  printf '%s\n' "$VENV"
  exit 0
fi
# Built where it lives (a venv's scripts hold its path); .complete marks a finished one.
rm -rf "$VENV"
start=$(date +%s)
log "pip install moto[server]==$MOTO_VERSION into $VENV"
"$PYTHON" -m venv "$VENV" >&2
if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2; then
  rm -rf "$VENV"
  die "pip install moto[server]==$MOTO_VERSION failed"
fi
: >"$VENV/.complete"
log "installed in $(($(date +%s) - start))s"
printf '%s\n' "$VENV"
