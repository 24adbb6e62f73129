# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The lost-quorum recovery's body (components/recovery/scripts.ts recoverScript; common.sh runs
# first), one phase per SSH session, on one surviving server. scripts/recover-quorum.ts runs each
# phase on every survivor before the next:
#   stop     stop the agent (a server stays a Raft peer on SIGTERM)
#   write    put PEERS_JSON in DATA_DIR/raft/peers.json (consul:consul 0640); the agent must be stopped
#   unwrite  remove it again (when a later survivor could not be written)
#   start    start the agent and wait for its API
#   join     join its own address: a Type=notify unit is READY only after a LAN join, and a lone
#            survivor's retry_join lists only dead servers. Serf runs one join at a time, so this
#            one can wait behind the agent's own retry_join, which dials each dead server until its
#            10 s TCP time-out
#   wait     wait for a leader, then print it and the Raft configuration
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from recoverScript's params: NODE HTTPS_PORT PHASE PEERS_JSON JOIN_ADDRESS WAIT_SECONDS;
#   from PATHS: BIN DATA_DIR CA_FILE.
readonly NODE HTTPS_PORT PHASE PEERS_JSON JOIN_ADDRESS WAIT_SECONDS
readonly BIN DATA_DIR CA_FILE
# Set first by common.sh and read there: STEP (named by say and fail).
: "${STEP?}"
STEP=$PHASE
require_root
require_tools curl systemctl
cli() {
    CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$(token_file)" \
        "$BIN" "$@"
}
running() {
    systemctl is-active --quiet consul
}
peers_file="$DATA_DIR/raft/peers.json"
case "$PHASE" in
stop)
    begun=$(now)
    systemctl stop consul || fail "systemctl stop consul failed; see journalctl -u consul on $NODE"
    if running; then fail "consul is still running after systemctl stop"; fi
    say "consul stopped in $(($(now) - begun))s"
    ;;
write)
    if running; then fail "consul is running; it must be stopped before peers.json is written"; fi
    [ -d "$DATA_DIR/raft" ] || fail "$DATA_DIR/raft does not exist: this server has no Raft data to recover"
    tmp="$DATA_DIR/raft/.peers.json.new"
    printf '%s\n' "$PEERS_JSON" >"$tmp"
    chown consul:consul "$tmp"
    chmod 0640 "$tmp"
    mv -f "$tmp" "$peers_file"
    say "wrote $peers_file"
    ;;
unwrite)
    rm -f "$peers_file" "$DATA_DIR/raft/.peers.json.new"
    say "removed $peers_file"
    ;;
start)
    begun=$(now)
    systemctl start --no-block consul || fail "systemctl start consul failed; see journalctl -u consul on $NODE"
    deadline=$((begun + WAIT_SECONDS))
    until api /v1/status/leader "" "$CA_FILE" >/dev/null; do
        if [ "$(now)" -ge "$deadline" ]; then
            fail "the agent's API did not answer within ${WAIT_SECONDS}s; see journalctl -u consul on $NODE"
        fi
        sleep 1
    done
    say "consul started, API answering after $(($(now) - begun))s"
    ;;
join)
    begun=$(now)
    out=$(cli join "$JOIN_ADDRESS" 2>&1) || fail "consul join $JOIN_ADDRESS failed: $out"
    say "joined $JOIN_ADDRESS in $(($(now) - begun))s"
    ;;
wait)
    deadline=$(($(now) + WAIT_SECONDS))
    until [ -n "$(leader "$CA_FILE")" ]; do
        if [ "$(now)" -ge "$deadline" ]; then
            fail "no leader within ${WAIT_SECONDS}s after the restart; see journalctl -u consul on $NODE"
        fi
        sleep 1
    done
    printf 'leader=%s\n' "$(leader "$CA_FILE")"
    printf 'active=%s\n' "$(systemctl is-active consul 2>/dev/null || :)"
    if [ -e "$peers_file" ]; then printf 'peers_json=yes\n'; else printf 'peers_json=no\n'; fi
    if raft=$(api '/v1/operator/raft/configuration?stale' "$(token_file)"); then
        printf 'raft=%s\n' "$(printf '%s' "$raft" | tr -d '\n')"
    fi
    ;;
*)
    fail "unknown phase $PHASE"
    ;;
esac
