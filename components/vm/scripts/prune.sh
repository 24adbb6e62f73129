# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The prune script's body (components/vm/scripts.ts pruneScript; common.sh runs first), on a live
# server: force-leaves dead nodes, removes dead servers from the Raft peers, waits for health.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from pruneScript's params: NODE HTTPS_PORT DEAD_NODES (space-separated) WAIT_SECONDS;
#   from PATHS: BIN CA_FILE.
readonly NODE HTTPS_PORT DEAD_NODES WAIT_SECONDS
readonly BIN CA_FILE
# Set first by common.sh and read there: STEP (named by say and fail).
# Read here too, so that shellcheck, which checks this file alone, sees them used.
: "${STEP?}"
STEP=prune
require_root
cli() {
    CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$(token_file)" \
        "$BIN" "$@"
}
# raft_id NODE: the node's Raft server ID, empty if it is not a peer.
raft_id() {
    api /v1/operator/raft/configuration "$(token_file)" | tr '{' '\n' | grep -F "\"Node\":\"$1\"" |
        sed -n 's/.*"ID":"\([^"]*\)".*/\1/p' | head -n 1
}
for dead in $DEAD_NODES; do
    if cli members 2>/dev/null | awk -v n="$dead" '$1 == n { found = 1 } END { exit !found }'; then
        out=$(cli force-leave -prune "$dead" 2>&1) || fail "consul force-leave -prune $dead failed: $out"
        say "$dead force-left and pruned from the member list"
    fi
    # A server also leaves the Raft peer set; force-leave does that through the leader, but not
    # when the peer never joined serf again, so remove it by ID as well.
    id=$(raft_id "$dead")
    if [ -n "$id" ]; then
        if out=$(cli operator raft remove-peer -id="$id" 2>&1); then
            say "$dead removed from the Raft peers"
        elif [ -n "$(raft_id "$dead")" ]; then
            fail "could not remove $dead ($id) from the Raft peers: $out"
        else
            say "$dead left the Raft peers"
        fi
    fi
done
STEP="wait"
deadline=$(($(now) + WAIT_SECONDS))
until [ -n "$(leader "$CA_FILE")" ] && api /v1/operator/autopilot/health "$(token_file)" | grep -q '^{"Healthy":true'; do
    if [ "$(now)" -ge "$deadline" ]; then
        fail "timed out after ${WAIT_SECONDS}s waiting for a leader and a healthy autopilot after pruning; see consul operator raft list-peers on $NODE"
    fi
    sleep 2
done
say "dead hosts pruned ($DEAD_NODES); leader $(leader "$CA_FILE"), autopilot healthy"
