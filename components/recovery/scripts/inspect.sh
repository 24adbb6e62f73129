# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The lost-quorum inspection's body (components/recovery/scripts.ts inspectScript; common.sh runs
# first): what one server's host knows, as key=value lines that scripts/recover-quorum.ts parses.
# It only reads. The management token goes to curl on stdin (common.sh api) and is never printed.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from inspectScript's params: NODE HTTPS_PORT (read by common.sh);
#   from PATHS: DATA_DIR CA_FILE.
readonly DATA_DIR CA_FILE
# Set first by common.sh and read there: STEP (named by say and fail).
: "${STEP?}"
STEP=inspect
require_root
require_tools curl systemctl
# is-active prints the state and exits non-zero unless active: keep the state, not the status.
printf 'active=%s\n' "$(systemctl is-active consul 2>/dev/null || :)"
if [ -f "$DATA_DIR/node-id" ]; then
    printf 'node_id=%s\n' "$(tr -d ' \n' <"$DATA_DIR/node-id")"
fi
if [ -d "$DATA_DIR/raft" ]; then printf 'raft_data=yes\n'; else printf 'raft_data=no\n'; fi
if [ -e "$DATA_DIR/raft/peers.json" ]; then printf 'peers_json=yes\n'; else printf 'peers_json=no\n'; fi
if leader_json=$(api /v1/status/leader "" "$CA_FILE"); then
    printf 'api=up\n'
    printf 'leader=%s\n' "$(printf '%s' "$leader_json" | tr -d '"\n')"
    # ?stale: the server's own Raft configuration, answered without a leader.
    if raft=$(api '/v1/operator/raft/configuration?stale' "$(token_file)"); then
        printf 'raft=%s\n' "$(printf '%s' "$raft" | tr -d '\n')"
    fi
else
    printf 'api=down\n'
fi
