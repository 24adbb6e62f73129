# shellcheck shell=bash
# Sourced by the e2e scripts: installs the Debian packages a script needs when they are missing
# (needs root; runs `apt-get update` only when an install fails on a stale package list). Under one
# machine-wide lock, so scripts running side by side (scripts/test-all.sh's prebuild beside the
# suites) never meet on dpkg's lock; the check is repeated once the lock is held. A caller with
# everything installed takes no lock (and needs no root).
# Expects the sourcing script to define log().

APT_LOCK_FILE=/run/consul-pulumi-apt.lock

# absent_packages PKG...: prints those not installed.
absent_packages() {
  local pkg
  for pkg in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]] || printf '%s\n' "$pkg"
  done
}

ensure_apt() {
  [[ -n "$(absent_packages "$@")" ]] || return 0
  (
    flock 7
    local absent
    mapfile -t absent < <(absent_packages "$@")
    ((${#absent[@]} == 0)) && exit 0
    log "installing apt packages: ${absent[*]}"
    # apt and dpkg ignore TERM (inherited): test-all.sh stopping the prebuild must not leave dpkg
    # half-way through an install.
    trap '' TERM
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${absent[@]}" >&2; then
      apt-get update >&2
      apt-get install -y --no-install-recommends "${absent[@]}" >&2
    fi
  ) 7>"$APT_LOCK_FILE"
}
