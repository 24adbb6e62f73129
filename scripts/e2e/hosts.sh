#!/usr/bin/env bash
# hosts.sh — throw-away "real" Linux hosts for the end-to-end tests.
#
# Why: the Pulumi program installs Consul over SSH onto hosts that run systemd. Here
# there are no VMs and no Docker, but systemd-nspawn boots a Debian root with real
# systemd and sshd. Each host gets its own overlayfs root on top of the cached image
# (image.sh), a static address on a private bridge this script creates (no default
# route, no NAT, no ip_forward change: nothing leaves the machine), and root SSH by key.
#
# Usage:
#   hosts.sh up <workdir> <n>          boot n hosts; writes <workdir>/hosts.json,
#                                      <workdir>/ssh_key (private key) and
#                                      <workdir>/bridge_addr (the host side, e.g. to
#                                      serve files to the hosts); prints hosts.json path
#   hosts.sh down <workdir>            stop hosts, unmount, delete bridge and workdir
#                                      (safe after a partial up, and when run twice)
#   hosts.sh net-cut <workdir> <i>     cut host i (1-based) off the bridge
#   hosts.sh net-restore <workdir> <i> reconnect host i
#   hosts.sh power-off <workdir> <i>   shut host i down cleanly (its disk stays)
#   hosts.sh boot <workdir> <i>        boot host i again (after power-off) and wait for sshd
#   hosts.sh ssh <workdir> <i> <cmd...> run a command on host i as root
#   hosts.sh info <workdir>            print bridge, subnet and host list
#
# Env: HOSTS_BOOT_TIMEOUT (s, default 60), HOSTS_STOP_TIMEOUT (s, default 20).
#      HOSTS_K8S_NODES ("i j ...", default none): these hosts are Kubernetes nodes, as kind's are
#      containers (tests/k8s-real/): the k8s-node image (image.sh IMAGE_FLAVOR=k8s-node), all
#      capabilities and the keyring system calls (runc gives each container a session keyring),
#      /var/lib/containerd on a plain directory (an overlayfs upper dir cannot be on overlayfs),
#      /dev/kmsg (kubelet's OOM watcher), and HOSTS_K8S_BIN (required then) read-only at
#      /opt/k8s/bin. The node remounts its cgroup controllers writable itself.
# hosts.json: [{"name":"consul-host-1","address":"10.213.X.11","port":22,"user":"root",
#               "machine":"<nspawn machine name>","veth":"<host-side veth>"}, ...]
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MARKER=.consul-pulumi-hosts
BOOT_TIMEOUT="${HOSTS_BOOT_TIMEOUT:-60}"
STOP_TIMEOUT="${HOSTS_STOP_TIMEOUT:-20}"
LOCK_FILE=/run/consul-pulumi-hosts.lock
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o BatchMode=yes -o ConnectTimeout=3 -o IdentitiesOnly=yes)

log() { printf '[hosts] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# Names derived from the workdir path, so `down` works even if state files are gone.
# Bridge: cpb<8 hex> (11 chars). Machine: c<6 hex>-<i>, so nspawn's host-side veth
# "vb-<machine>" stays within the 15-char interface-name limit and is unique per run.
wd_hash() { printf '%s' "$1" | sha256sum | cut -c1-8; }
bridge_name() { printf 'cpb%s\n' "$(wd_hash "$1")"; }
machine_name() { printf 'c%s-%s\n' "$(wd_hash "$1" | cut -c1-6)" "$2"; }
veth_name() { printf 'vb-%s\n' "$(machine_name "$1" "$2")"; }

# PID is the nspawn process that we started for this root (guards against PID reuse).
is_our_nspawn() {
  local pid="$1" root="$2" cmd
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *systemd-nspawn* && "$cmd" == *"-D $root "* ]]
}

# Mount points at or below a path, deepest first.
mounts_under() {
  local base="$1"
  awk -v b="$base" '{ m=$5; gsub(/\\040/, " ", m); if (m == b || index(m, b "/") == 1) print m }' \
    /proc/self/mountinfo | sort -r
}

subnet_in_use() {
  local prefix="$1"
  # Whole outputs captured first (a `| grep -q` can SIGPIPE the writer under pipefail).
  local addrs routes
  addrs="$(ip -4 -o addr show)"
  routes="$(ip -4 route show)"
  awk -v p="$prefix." '{ for (i = 1; i <= NF; i++) if (index($i, p) == 1) found = 1 } END { exit !found }' \
    <<<"$addrs"$'\n'"$routes"
}

host_addr() { printf '%s.%s\n' "$(cat "$1/subnet")" "$((10 + $2))"; }

# node_cgroups MACHINE: "<hierarchy dir>/<this process's cgroup>/k8s-node-MACHINE" for each cgroup
# hierarchy mounted under /sys/fs/cgroup (v1 controllers, name=systemd, and the v2 one).
node_cgroups() {
  local machine="$1" id ctrls rel dir name
  while IFS=: read -r id ctrls rel; do
    [[ -n "$id" ]] || continue
    if [[ -z "$ctrls" ]]; then dir=/sys/fs/cgroup/unified; [[ -d "$dir" ]] || dir=/sys/fs/cgroup
    else
      name="${ctrls#name=}"
      dir="/sys/fs/cgroup/$name"
      [[ -d "$dir" ]] || dir="/sys/fs/cgroup/${ctrls%%,*}"
    fi
    [[ -d "$dir" ]] && printf '%s\n' "$dir${rel%/}/k8s-node-$machine"
  done </proc/self/cgroup
}

# enter_node_cgroup HOST_DIR MACHINE: moves this (sub)shell into a new cgroup in every hierarchy,
# listed in HOST_DIR/cgroups for remove_node_cgroups.
enter_node_cgroup() {
  local cg
  node_cgroups "$2" >>"$1/cgroups"
  while IFS= read -r cg; do
    mkdir -p "$cg"
    # A new cpuset cgroup has no CPUs or memory nodes, and takes no process, until given its parent's.
    if [[ -f "$cg/cpuset.cpus" ]]; then
      cat "${cg%/*}/cpuset.cpus" >"$cg/cpuset.cpus"
      cat "${cg%/*}/cpuset.mems" >"$cg/cpuset.mems"
    fi
    printf '%s\n' "$BASHPID" >"$cg/cgroup.procs"
  done < <(node_cgroups "$2")
}

# remove_node_cgroups HOST_DIR: once the node is gone, its cgroups, deepest first (the kubelet's
# kubepods tree stays behind, empty, when the node's processes are killed).
remove_node_cgroups() {
  local cg
  [[ -f "$1/cgroups" ]] || return 0
  while IFS= read -r cg; do
    [[ -d "$cg" ]] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d "$cg" ]] && log "WARNING: could not remove cgroup $cg"
  done <"$1/cgroups"
  return 0
}

# Boots host i's container on its (mounted) overlay root: at `up`, and again after power-off.
start_host() {
  local wd="$1" i="$2" hd br
  hd="$wd/hosts/$i"
  br="$(cat "$wd/bridge")"
  # setsid + all fds redirected: the container outlives this shell and holds none of
  # the caller's pipes (a test runner waiting for EOF would otherwise hang).
  local node_args=()
  if [[ -f "$hd/k8s-bin" ]]; then
    node_args=(--capability=all --system-call-filter=@keyring --bind="$hd/containerd:/var/lib/containerd"
      --bind=/dev/kmsg --bind-ro="$(cat "$hd/k8s-bin"):/opt/k8s/bin")
  fi
  (
    # A node's kubelet makes its pods' cgroups at the root of the node's cgroup namespace: that
    # root is a cgroup of its own (removed at stop_host), not this machine's.
    [[ -f "$hd/k8s-bin" ]] && enter_node_cgroup "$hd" "$(machine_name "$wd" "$i")"
    exec setsid systemd-nspawn -D "$hd/root" --boot --register=no --keep-unit "${node_args[@]}" \
      --network-bridge="$br" --machine="$(machine_name "$wd" "$i")" --hostname="consul-host-$i" \
      --kill-signal=SIGRTMIN+3 --console=read-only --resolv-conf=off --timezone=off \
      --link-journal=no --setenv=SYSTEMD_COLORS=0
  ) </dev/null >>"$hd/console.log" 2>&1 9>&- &
  printf '%s\n' "$!" >"$hd/pid"
  # The subshell becomes nspawn at its exec (after a node's cgroup set-up): the boot wait that
  # follows tells a host whose nspawn exited by that process, so wait (bounded) until it is one.
  local t
  for ((t = 0; t < 50; t++)); do
    is_our_nspawn "$!" "$hd/root" && break
    sleep 0.1
  done
}

cmd_up() {
  local wd="$1" n="$2"
  if ! [[ "$n" =~ ^[1-9][0-9]?$ ]] || ((n > 50)); then die "n must be 1..50"; fi
  [[ $EUID -eq 0 ]] || die "must run as root"
  grep -qw overlay /proc/filesystems || modprobe overlay || die "kernel has no overlayfs"
  ensure_apt systemd-container iproute2 openssh-client jq util-linux testssl.sh

  if [[ -e "$wd/$MARKER" ]]; then
    die "$wd is already in use (run: $0 down $wd)"
  fi
  if [[ -e "$wd" && -n "$(ls -A "$wd" 2>/dev/null)" ]]; then
    die "$wd exists and is not empty"
  fi
  mkdir -p "$wd"
  wd="$(cd "$wd" && pwd -P)"
  : >"$wd/$MARKER"

  # From here on, any failure or exit before the end tears down whatever was started.
  UP_OK=0
  # shellcheck disable=SC2064
  trap "up_exit '$wd'" EXIT

  local image node_image="" k8s_nodes=" ${HOSTS_K8S_NODES:-} "
  image="$("$SCRIPT_DIR/image.sh" | tail -n1)"
  [[ -d "$image" ]] || die "image.sh gave no image"
  if [[ -n "${HOSTS_K8S_NODES:-}" ]]; then
    [[ -d "${HOSTS_K8S_BIN:-}" ]] || die "HOSTS_K8S_NODES needs HOSTS_K8S_BIN, the directory of the Kubernetes binaries"
    node_image="$(IMAGE_FLAVOR=k8s-node "$SCRIPT_DIR/image.sh" | tail -n1)"
    [[ -d "$node_image" ]] || die "image.sh gave no k8s-node image"
  fi

  local br
  br="$(bridge_name "$wd")"
  printf '%s\n' "$br" >"$wd/bridge"

  # Pick a free 10.213.x.0/24 and create the bridge under a machine-wide lock, so
  # parallel `up`s never pick the same subnet.
  (
    exec 9>"$LOCK_FILE"
    flock 9
    local x prefix=""
    for x in $(seq 0 254); do
      subnet_in_use "10.213.$x" || { prefix="10.213.$x"; break; }
    done
    [[ -n "$prefix" ]] || die "no free 10.213.x.0/24 subnet"
    ip link add name "$br" type bridge
    ip addr add "$prefix.1/24" dev "$br"
    ip link set dev "$br" up
    printf '%s\n' "$prefix" >"$wd/subnet"
  )
  local prefix
  prefix="$(cat "$wd/subnet")"
  printf '%s\n' "$prefix.1" >"$wd/bridge_addr"
  log "bridge $br = $prefix.1/24 (no default route, no NAT)"

  ssh-keygen -q -t ed25519 -N '' -C "consul-pulumi-e2e" -f "$wd/ssh_key"

  local i hd root machine addr hosts_etc
  hosts_etc="127.0.0.1 localhost"$'\n'"::1 localhost ip6-localhost ip6-loopback"$'\n'
  for ((i = 1; i <= n; i++)); do
    hosts_etc+="$prefix.$((10 + i)) consul-host-$i"$'\n'
  done

  for ((i = 1; i <= n; i++)); do
    hd="$wd/hosts/$i"
    root="$hd/root"
    machine="$(machine_name "$wd" "$i")"
    addr="$prefix.$((10 + i))"
    mkdir -p "$hd/upper" "$hd/work" "$root"
    local lower="$image"
    if [[ "$k8s_nodes" == *" $i "* ]]; then
      lower="$node_image"
      mkdir -p "$hd/containerd"
      realpath "$HOSTS_K8S_BIN" >"$hd/k8s-bin"
    fi
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$hd/upper,workdir=$hd/work" "$root"
    printf '%s\n' "$root" >"$hd/mount"

    printf 'consul-host-%s\n' "$i" >"$root/etc/hostname"
    printf '%s' "$hosts_etc" >"$root/etc/hosts"
    mkdir -p "$root/etc/systemd/network"
    cat >"$root/etc/systemd/network/10-host0.network" <<EOF
[Match]
Name=host0

[Network]
Address=$addr/24
DHCP=no
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
    install -d -m 700 "$root/root/.ssh"
    install -m 600 "$wd/ssh_key.pub" "$root/root/.ssh/authorized_keys"

    start_host "$wd" "$i"
    log "host $i: $machine pid $(cat "$hd/pid") addr $addr veth $(veth_name "$wd" "$i")"
  done

  # hosts.json (written before the wait, so a debugging caller can look at it).
  local json="[]"
  for ((i = 1; i <= n; i++)); do
    json="$(jq -c --arg name "consul-host-$i" --arg addr "$prefix.$((10 + i))" \
      --arg machine "$(machine_name "$wd" "$i")" --arg veth "$(veth_name "$wd" "$i")" \
      '. + [{name: $name, address: $addr, port: 22, user: "root", machine: $machine, veth: $veth}]' <<<"$json")"
  done
  jq . <<<"$json" >"$wd/hosts.json"

  # Wait (bounded) until sshd answers on every host.
  local deadline=$((SECONDS + BOOT_TIMEOUT)) pending
  while :; do
    pending=()
    for ((i = 1; i <= n; i++)); do
      hd="$wd/hosts/$i"
      is_our_nspawn "$(cat "$hd/pid")" "$hd/root" || {
        log "host $i: systemd-nspawn exited; console log:"
        tail -n 30 "$hd/console.log" >&2
        false
      }
      [[ -e "$hd/ready" ]] && continue
      if ssh "${SSH_OPTS[@]}" -i "$wd/ssh_key" "root@$(host_addr "$wd" "$i")" true 2>/dev/null; then
        : >"$hd/ready"
      else
        pending+=("$i")
      fi
    done
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      log "timed out after ${BOOT_TIMEOUT}s waiting for sshd on host(s): ${pending[*]}"
      for i in "${pending[@]}"; do
        log "--- host $i console (last 20 lines)"
        tail -n 20 "$wd/hosts/$i/console.log" >&2 || true
      done
      false
    fi
    sleep 1
  done
  UP_OK=1
  log "$n host(s) up in ${SECONDS}s"
  printf '%s\n' "$wd/hosts.json"
}

# shellcheck disable=SC2317  # invoked via the EXIT trap
up_exit() {
  local rc=$? wd="$1"
  [[ "${UP_OK:-0}" == 1 ]] && return 0
  trap - EXIT
  set +e
  if [[ "${HOSTS_KEEP_ON_FAIL:-0}" == 1 ]]; then
    log "up failed; HOSTS_KEEP_ON_FAIL=1, leaving $wd for inspection (run down later)"
  else
    log "up failed; tearing down $wd"
    cmd_down "$wd"
  fi
  exit $((rc == 0 ? 1 : rc))
}

# Host PIDs of processes inside the container rooted on <hd>/root: their root mount
# ("/" in their mount namespace) is the overlay with upperdir=<hd>/upper.
container_pids() {
  local upper="$1/upper," f pid
  for f in /proc/[0-9]*/mountinfo; do
    pid="${f#/proc/}"
    pid="${pid%/mountinfo}"
    awk -v u="upperdir=$upper" '$5 == "/" && index($0, u) { found = 1 } END { exit !found }' \
      "$f" 2>/dev/null && printf '%s\n' "$pid"
  done
  return 0
}

stop_host() {
  local hd="$1" pid root t
  root="$hd/root"
  pid="$(cat "$hd/pid" 2>/dev/null || true)"
  if is_our_nspawn "$pid" "$root"; then
    # SIGTERM: nspawn forwards its --kill-signal (SIGRTMIN+3) to the container's
    # systemd, which does a clean poweroff; nspawn exits when the container is gone.
    kill -TERM "$pid" 2>/dev/null || true
    for ((t = 0; t < STOP_TIMEOUT * 5; t++)); do
      is_our_nspawn "$pid" "$root" || break
      sleep 0.2
    done
    if is_our_nspawn "$pid" "$root"; then
      log "$(basename "$hd"): no clean shutdown in ${STOP_TIMEOUT}s; SIGKILL. Console tail:"
      tail -n 15 "$hd/console.log" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      for ((t = 0; t < 50; t++)); do
        is_our_nspawn "$pid" "$root" || break
        sleep 0.2
      done
    fi
  fi
  # A SIGKILLed nspawn leaves the container's init (and everything under it) running,
  # re-parented to PID 1, in its own PID and mount namespaces. Kill what is left: a
  # SIGKILL to a PID namespace's init kills the whole namespace.
  local left
  left="$(container_pids "$hd")"
  if [[ -n "$left" ]]; then
    log "$(basename "$hd"): killing leftover container processes: $(tr '\n' ' ' <<<"$left")"
    # shellcheck disable=SC2086  # one PID per word
    kill -KILL $left 2>/dev/null || true
    for ((t = 0; t < 50; t++)); do
      [[ -z "$(container_pids "$hd")" ]] && break
      sleep 0.2
    done
  fi
  remove_node_cgroups "$hd"
}

cmd_down() {
  local wd="$1"
  wd="$(realpath -m "$wd")"
  [[ "$wd" != / && "$wd" != "$HOME" ]] || die "refusing to use $wd as a workdir"
  local br hd m
  br="$(cat "$wd/bridge" 2>/dev/null || bridge_name "$wd")"

  if [[ -d "$wd/hosts" ]]; then
    # Stop all hosts in parallel (each clean poweroff takes a second or two).
    local pids=()
    for hd in "$wd"/hosts/*/; do
      [[ -d "$hd" ]] || continue
      stop_host "${hd%/}" &
      pids+=("$!")
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}" || true
  fi

  # Unmount everything under the workdir (the overlay roots and anything nspawn left).
  while IFS= read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>/dev/null || { sleep 0.5; umount "$m" 2>/dev/null; } || umount -l "$m" ||
      log "WARNING: could not unmount $m"
  done < <(mounts_under "$wd")

  # nspawn's per-machine propagation dir is left behind when nspawn was SIGKILLed.
  local mdir
  for mdir in /run/systemd/nspawn/propagate/"c$(wd_hash "$wd" | cut -c1-6)"-*; do
    [[ -d "$mdir" && -z "$(mounts_under "$mdir")" ]] && rm -rf --one-file-system "$mdir"
  done

  if ip link show dev "$br" >/dev/null 2>&1; then
    ip link delete dev "$br" type bridge
    log "deleted bridge $br"
  fi

  if [[ -d "$wd" ]]; then
    if [[ -e "$wd/$MARKER" || -z "$(ls -A "$wd")" ]]; then
      [[ -z "$(mounts_under "$wd")" ]] || die "mounts still present under $wd; not deleting it"
      rm -rf --one-file-system "$wd"
    else
      log "WARNING: $wd was not created by hosts.sh; not deleting it"
    fi
  fi
  log "down: $wd"
}

host_dir_checked() {
  local wd="$1" i="$2"
  [[ -f "$wd/$MARKER" && -d "$wd/hosts/$i" ]] || die "no host $i in $wd"
}

cmd_net() {
  local action="$1" wd="$2" i="$3" veth br
  host_dir_checked "$wd" "$i"
  veth="$(veth_name "$wd" "$i")"
  br="$(cat "$wd/bridge")"
  case "$action" in
    cut)
      ip link set dev "$veth" nomaster
      ip link set dev "$veth" down
      log "host $i cut off ($veth detached from $br)"
      ;;
    restore)
      ip link set dev "$veth" master "$br"
      ip link set dev "$veth" up
      log "host $i reconnected ($veth on $br)"
      ;;
  esac
}

# power-off: a clean shutdown of host i (its root and disk stay); boot: start it again and wait
# for sshd. Together they are a reboot of that machine.
cmd_power() {
  local action="$1" wd="$2" i="$3" hd t
  host_dir_checked "$wd" "$i"
  hd="$wd/hosts/$i"
  case "$action" in
    off)
      stop_host "$hd"
      log "host $i powered off"
      ;;
    on)
      is_our_nspawn "$(cat "$hd/pid" 2>/dev/null || true)" "$hd/root" && die "host $i is running"
      start_host "$wd" "$i"
      for ((t = 0; t < BOOT_TIMEOUT; t++)); do
        if ssh "${SSH_OPTS[@]}" -i "$wd/ssh_key" "root@$(host_addr "$wd" "$i")" true 2>/dev/null; then
          log "host $i booted in ${t}s"
          return 0
        fi
        sleep 1
      done
      tail -n 20 "$hd/console.log" >&2 || true
      die "host $i: no sshd ${BOOT_TIMEOUT}s after boot"
      ;;
  esac
}

cmd_ssh() {
  local wd="$1" i="$2"
  shift 2
  host_dir_checked "$wd" "$i"
  exec ssh "${SSH_OPTS[@]}" -i "$wd/ssh_key" "root@$(host_addr "$wd" "$i")" -- "$@"
}

cmd_info() {
  local wd="$1"
  [[ -f "$wd/$MARKER" ]] || die "$wd is not a hosts.sh workdir"
  printf 'bridge=%s subnet=%s.0/24 bridge_addr=%s.1\n' "$(cat "$wd/bridge")" "$(cat "$wd/subnet")" "$(cat "$wd/subnet")"
  cat "$wd/hosts.json"
}

main() {
  (($# >= 2)) || usage
  local cmd="$1" wd="$2"
  shift 2
  case "$cmd" in
    up) (($# == 1)) || usage; cmd_up "$wd" "$1" ;;
    down) cmd_down "$wd" ;;
    net-cut) (($# == 1)) || usage; cmd_net cut "$(realpath -m "$wd")" "$1" ;;
    net-restore) (($# == 1)) || usage; cmd_net restore "$(realpath -m "$wd")" "$1" ;;
    power-off) (($# == 1)) || usage; cmd_power off "$(realpath -m "$wd")" "$1" ;;
    boot) (($# == 1)) || usage; cmd_power on "$(realpath -m "$wd")" "$1" ;;
    ssh) (($# >= 2)) || usage; cmd_ssh "$(realpath -m "$wd")" "$@" ;;
    info) cmd_info "$(realpath -m "$wd")" ;;
    *) usage ;;
  esac
}

main "$@"; exit $?
