#!/usr/bin/env bash
# Installs the Debian tools the tests call (openssl, ssh-keygen, shellcheck, systemd-analyze, jq for
# the server-count Job's script; gpg, gpgv and unzip for the release-download runs) when they are
# missing, so `npm cit` is the whole set-up on a fresh machine. Needs root for apt-get; otherwise it
# names what to install.
set -euo pipefail

declare -A package_of=(
    [openssl]=openssl
    [ssh-keygen]=openssh-client
    [shellcheck]=shellcheck
    [systemd-analyze]=systemd
    [gpg]=gnupg
    [gpgv]=gpgv
    [unzip]=unzip
    [jq]=jq
)

missing=()
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "The tests need these packages: ${missing[*]}. Install them (e.g. sudo apt-get install ${missing[*]}) and run again." >&2
    exit 1
fi
log() { echo "$*" >&2; }
# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e/apt.sh"
ensure_apt "${missing[@]}"
