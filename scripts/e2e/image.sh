#!/usr/bin/env bash
# image.sh — build (once) and cache the Debian bookworm root filesystem that the
# end-to-end test hosts boot with systemd-nspawn.
#
# Why: the e2e tests need real Linux hosts with real systemd and sshd (no Docker or VMs
# here). One minbase debootstrap image is shared read-only by every test host as the
# lower layer of an overlayfs mount (see hosts.sh).
#
# What: ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/image-bookworm-<hash>, built in a
# temp dir and renamed into place, so a half-built image is never used. A stamp file
# inside the image records the inputs (package list, suite, mirror, tweaks version), and
# <hash> is the stamp's: other inputs build another image next to it rather than replace
# one that hosts of a suite running from another checkout may be booted from.
# Uses the Debian mirror this machine's apt is configured with.
# Prints the image path as the last line on stdout; progress goes to stderr.
#
# Env: DEBIAN_MIRROR (default: from /etc/apt/sources.list*), IMAGE_FORCE=1 to rebuild.
set -euo pipefail

SUITE=bookworm
# systemd/dbus/sshd/networking for a real host; curl+unzip+ca-certificates for a
# Consul install script (download, verify, unpack); procps for ps/pgrep; rclone for the
# servers' snapshot uploads (snapshot.sh); dnsutils (dig) and systemd-resolved for the
# DNS suite (dns.e2e.ts, the dnsForwarder); less/iputils
# are deliberately left out to keep it small.
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,curl,unzip,procps,rclone,dnsutils,systemd-resolved
# IMAGE_FLAVOR=k8s-node: also what a one-node Kubernetes runs (tests/k8s-real/): the container
# runtime and CNI plugins from Debian, and the tools kubelet calls (iptables, mount, conntrack).
case "${IMAGE_FLAVOR:-}" in
  "") ;;
  k8s-node) PACKAGES+=,containerd,runc,containernetworking-plugins,iptables,conntrack,mount,util-linux,kmod,jq ;;
  *) printf '[image] ERROR: IMAGE_FLAVOR must be empty or k8s-node, not %s\n' "$IMAGE_FLAVOR" >&2; exit 2 ;;
esac
# Bump when the in-image tweaks below change, to force a rebuild.
TWEAKS_VERSION=3

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
IMAGE=""
STAMP_REL=etc/consul-pulumi-image.stamp

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# The first mirror URI configured for "$SUITE" (not -security/-updates) on this machine.
detect_mirror() {
  local f uri
  # deb822 *.sources files: a stanza with "Suites: ... bookworm ..." and "URIs: ...".
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    uri="$(awk -v suite="$SUITE" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; ok=0; deb=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) deb=1
          if ($i ~ /^URIs:/) { uris=$i; sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); uris=u[1] }
          if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
        }
        if (deb && ok && uris != "") { print uris; exit }
      }' "$f")"
    [[ -n "$uri" ]] && { printf '%s\n' "$uri"; return 0; }
  done
  # one-line sources.list format: "deb [opts] URI bookworm main ..."
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    uri="$(awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i+1) == suite) { print $i; exit }
      }' "$f")"
    [[ -n "$uri" ]] && { printf '%s\n' "$uri"; return 0; }
  done
  return 1
}

main() {
  [[ $EUID -eq 0 ]] || die "must run as root (debootstrap, chroot)"
  ensure_apt debootstrap systemd-container debian-archive-keyring
  mkdir -p "$CACHE_ROOT"

  local mirror="${DEBIAN_MIRROR:-}"
  [[ -n "$mirror" ]] || mirror="$(detect_mirror)" || die "no apt source for $SUITE in /etc/apt/sources.list*; set DEBIAN_MIRROR"
  local stamp
  stamp="suite=$SUITE packages=$PACKAGES mirror=$mirror tweaks=$TWEAKS_VERSION"
  IMAGE="$CACHE_ROOT/image-$SUITE-$(printf '%s' "$stamp" | sha256sum | cut -c1-12)"

  # One lock per image: building this one never holds up a suite that wants another.
  exec 9>"$CACHE_ROOT/.${IMAGE##*/}.lock"
  flock 9

  if [[ "${IMAGE_FORCE:-0}" != 1 && -f "$IMAGE/$STAMP_REL" && "$(cat "$IMAGE/$STAMP_REL")" == "$stamp" ]]; then
    log "cached: $IMAGE"
    printf '%s\n' "$IMAGE"
    return 0
  fi

  local start tmp root
  start=$(date +%s)
  tmp="$(mktemp -d "$CACHE_ROOT/.image-build-XXXXXX")"
  # shellcheck disable=SC2064  # expand $tmp now
  trap "rm -rf --one-file-system '$tmp'" EXIT
  root="$tmp/root"

  log "debootstrap --variant=minbase $SUITE from $mirror (packages: $PACKAGES)"
  debootstrap --variant=minbase --include="$PACKAGES" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$SUITE" "$root" "$mirror" >&2

  log "configuring image"
  # Networking: systemd-networkd (static address is dropped in per host by hosts.sh).
  chroot "$root" systemctl enable systemd-networkd.service ssh.service >&2
  # Units that have nothing to do in an nspawn container and only add noise.
  chroot "$root" systemctl mask \
    getty@tty1.service serial-getty@ttyS0.service console-getty.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer >&2 2>/dev/null || true

  # Bound a poweroff: a service that ignores SIGTERM (e.g. a Consul server waiting on
  # peers that are stopping at the same time) is killed after 10 s instead of 90 s, so
  # `hosts.sh down` sees a clean container shutdown within its own timeout.
  mkdir -p "$root/etc/systemd/system.conf.d"
  printf '[Manager]\nDefaultTimeoutStopSec=10s\n' >"$root/etc/systemd/system.conf.d/10-e2e.conf"

  # sshd: root by key only; host keys are generated per container at first boot so the
  # hosts do not share the image's keys.
  mkdir -p "$root/etc/ssh/sshd_config.d" "$root/etc/systemd/system/ssh.service.d"
  cat >"$root/etc/ssh/sshd_config.d/10-e2e.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/systemd/system/ssh.service.d/10-hostkeys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF
  mkdir -p "$root/root/.ssh"
  chmod 700 "$root/root/.ssh"

  # No DNS on the test network (debootstrap copied this machine's resolver, which the
  # hosts must never try to reach); the test hosts' names are in /etc/hosts.
  rm -f "$root/etc/resolv.conf"
  printf '# no DNS on the e2e test network; test host names are in /etc/hosts\n' >"$root/etc/resolv.conf"
  # Each container gets its own machine id at boot.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # Keep it small.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  printf '%s\n' "$stamp" >"$root/$STAMP_REL"

  # Atomic swap: the new image appears under its final name in one rename.
  if [[ -e "$IMAGE" ]]; then
    mv "$IMAGE" "$tmp/old"
  fi
  mv "$root" "$IMAGE"
  log "built $IMAGE ($(du -sh --one-file-system "$IMAGE" | cut -f1)) in $(($(date +%s) - start))s"
  printf '%s\n' "$IMAGE"
}

main "$@"; exit $?
