#!/usr/bin/env bash
# smoke.sh — acceptance check of the real-host e2e infrastructure.
#
# Why: proves that build-consul.sh, image.sh and hosts.sh work together before any
# TypeScript e2e test relies on them.
#
# What: builds (or reuses) the Consul binary and the host image, boots 3 hosts, serves
# the release-mirror dir over HTTP from the bridge address (python3 -m http.server),
# and on every host downloads the zip with curl, checks its SHA-256 against the
# SHA256SUMS file, unzips it to /usr/local/bin and starts a 3-server Consul under the
# host's systemd (systemd-run --unit=consul). Waits until `consul members` shows 3
# alive and `consul operator raft list-peers` shows 3 peers with a leader, prints the
# time to leader, and always tears everything down (trap on EXIT).
#
# Env: SMOKE_LEADER_TIMEOUT (s, default 120), SMOKE_KEEP=1 leaves the hosts up.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOSTS="$SCRIPT_DIR/hosts.sh"
N=3
LEADER_TIMEOUT="${SMOKE_LEADER_TIMEOUT:-120}"
HTTP_PORT=8080

log() { printf '[smoke %4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WD=""
HTTP_PID=""
# shellcheck disable=SC2317  # invoked via the EXIT trap
cleanup() {
  local rc=$?
  set +e
  if [[ -n "$HTTP_PID" ]]; then
    kill "$HTTP_PID" 2>/dev/null
    wait "$HTTP_PID" 2>/dev/null
  fi
  if [[ -n "$WD" ]]; then
    if ((rc != 0)); then
      local i
      for ((i = 1; i <= N; i++)); do
        [[ -f "$WD/hosts/$i/pid" ]] || continue
        log "--- host $i: journalctl -u consul (last 15 lines)"
        "$HOSTS" ssh "$WD" "$i" 'journalctl -u consul --no-pager -n 15' >&2 2>/dev/null
      done
    fi
    if [[ "${SMOKE_KEEP:-0}" == 1 ]]; then
      log "SMOKE_KEEP=1: hosts left up; run: $HOSTS down $WD"
    else
      "$HOSTS" down "$WD"
    fi
  fi
  if ((rc == 0)); then log "PASS"; else log "FAIL (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

main() {
  command -v python3 >/dev/null || die "python3 is required"

  # The image (debootstrap, mostly I/O) builds while Consul compiles (CPU).
  local t0=$SECONDS bin mirror version image image_out image_pid
  image_out="$(mktemp)"
  "$SCRIPT_DIR/image.sh" >"$image_out" &
  image_pid=$!
  bin="$("$SCRIPT_DIR/build-consul.sh" | tail -n1)"
  mirror="$(dirname "$bin")"
  version="$("$bin" version)"
  version="${version%%$'\n'*}"
  version="${version#Consul v}"
  log "consul $version at $bin ($((SECONDS - t0))s)"
  wait "$image_pid" || die "image.sh failed"
  image="$(tail -n1 "$image_out")"
  rm -f "$image_out"
  [[ -d "$image" ]] || die "image.sh gave no image"
  log "image $image ($((SECONDS - t0))s)"

  WD="$(mktemp -d /tmp/consul-smoke-XXXXXX)"
  t0=$SECONDS
  "$HOSTS" up "$WD" "$N" >/dev/null
  log "$N hosts up ($((SECONDS - t0))s)"

  local prefix bridge_ip
  prefix="$(cat "$WD/subnet")"
  bridge_ip="$prefix.1"
  python3 -m http.server "$HTTP_PORT" --bind "$bridge_ip" --directory "$mirror" \
    </dev/null >"$WD/http.log" 2>&1 &
  HTTP_PID=$!
  local base="http://$bridge_ip:$HTTP_PORT" t
  for ((t = 0; t < 50; t++)); do
    curl -fsS -o /dev/null "$base/" 2>/dev/null && break
    sleep 0.2
  done
  curl -fsS -o /dev/null "$base/consul_${version}_SHA256SUMS" || die "mirror not served at $base"
  log "release mirror served at $base"

  local addrs=() i
  for ((i = 1; i <= N; i++)); do addrs+=("$prefix.$((10 + i))"); done

  # Install and start on all hosts in parallel.
  local pids=() joins j
  t0=$SECONDS
  for ((i = 1; i <= N; i++)); do
    joins=""
    for ((j = 1; j <= N; j++)); do
      ((j == i)) || joins+=" -retry-join=${addrs[j - 1]}"
    done
    "$HOSTS" ssh "$WD" "$i" "set -eu
      cd /tmp
      curl -fsSO '$base/consul_${version}_linux_amd64.zip'
      curl -fsSO '$base/consul_${version}_SHA256SUMS'
      grep ' consul_${version}_linux_amd64.zip\$' 'consul_${version}_SHA256SUMS' | sha256sum -c --quiet
      unzip -o -q 'consul_${version}_linux_amd64.zip' -d /usr/local/bin
      /usr/local/bin/consul version >/tmp/consul-version && head -n1 /tmp/consul-version
      mkdir -p /var/lib/consul
      systemd-run --unit=consul --quiet /usr/local/bin/consul agent -server -bootstrap-expect=$N \
        $joins -data-dir=/var/lib/consul -bind=${addrs[i - 1]} -client=127.0.0.1 \
        -node=consul-host-$i" >"$WD/install-$i.log" 2>&1 &
    pids+=("$!")
  done
  for ((i = 1; i <= N; i++)); do
    wait "${pids[i - 1]}" || { cat "$WD/install-$i.log" >&2; die "install on host $i failed"; }
  done
  log "installed and started on $N hosts ($((SECONDS - t0))s): $(head -n1 "$WD/install-1.log")"

  # Wait for N alive members and a Raft leader with N peers, as seen from every host.
  # Polled through the local status API (answered at once; `consul operator raft
  # list-peers` blocks up to ~7 s while there is no leader); list-peers is shown at the end.
  local start_ms ok out alive leader peers
  # shellcheck disable=SC2016  # expanded on the remote host
  local probe='consul members 2>/dev/null
    echo "LEADER $(curl -fsS http://127.0.0.1:8500/v1/status/leader 2>/dev/null)"
    echo "PEERS $(curl -fsS http://127.0.0.1:8500/v1/status/peers 2>/dev/null)"'
  start_ms=$(date +%s%3N)
  while :; do
    ok=1
    for ((i = 1; i <= N; i++)); do
      out="$(timeout 20 "$HOSTS" ssh "$WD" "$i" "$probe" 2>/dev/null)" || true
      alive="$(awk '$3 == "alive" && $2 ~ /:8301$/' <<<"$out" | wc -l)"
      leader="$(sed -n 's/^LEADER "\(.*:8300\)"$/\1/p' <<<"$out")"
      peers="$(sed -n 's/^PEERS //p' <<<"$out" | grep -o ':8300"' | wc -l)" || peers=0
      if [[ "$alive" != "$N" || -z "$leader" || "$peers" != "$N" ]]; then
        ok=0
        break
      fi
    done
    ((ok)) && break
    (($(date +%s%3N) - start_ms < LEADER_TIMEOUT * 1000)) ||
      die "no leader with $N alive members after ${LEADER_TIMEOUT}s (host $i: alive=$alive leader=${leader:-none} peers=$peers)"
    sleep 0.5
  done
  local ms=$(($(date +%s%3N) - start_ms))
  log "time to leader: $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s after the agents were started ($N alive, leader $leader, $N raft peers on every host)"
  "$HOSTS" ssh "$WD" 1 'consul members; echo; consul operator raft list-peers' >&2
}

main "$@"; exit $?
