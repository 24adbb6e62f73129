# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The remove script's body (components/vm/scripts.ts removeScript; common.sh runs first): a
# graceful leave, then the unit, config, keys, data, and what the apply script installed, go.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from removeScript's params: NODE OWNER_ID ROLE HTTPS_PORT INSTALL_MODE SERVER_COUNT WAIT_SECONDS;
#   from PATHS: BIN CONFIG_DIR DATA_DIR CA_FILE PROFILE UNIT_FILE OWNER_FILE USER_MARKER BACKUP
#   SNAPSHOT_BIN SNAPSHOT_SERVICE SNAPSHOT_TIMER SNAPSHOT_DIR RESOLVED_DROPIN.
readonly NODE OWNER_ID ROLE HTTPS_PORT INSTALL_MODE SERVER_COUNT WAIT_SECONDS
readonly BIN CONFIG_DIR DATA_DIR CA_FILE PROFILE UNIT_FILE OWNER_FILE USER_MARKER BACKUP
readonly SNAPSHOT_BIN SNAPSHOT_SERVICE SNAPSHOT_TIMER SNAPSHOT_DIR RESOLVED_DROPIN
# Set first by common.sh and read there: STEP (named by say and fail).
# Read here too, so that shellcheck, which checks this file alone, sees them used.
: "${STEP?}"
STEP=leave
require_root
# When a host moves between serverHosts and clientHosts, or is renamed, the new resource's create
# runs before the old one's delete: leave the agent alone if another resource owns it now.
if [ -r "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" != "$OWNER_ID" ]; then
    say "the agent here is now managed as $(cat "$OWNER_FILE"), not $OWNER_ID: left as is"
    exit 0
fi
if systemctl is-active --quiet consul.service; then
    if [ "$ROLE" = server ] && [ "$SERVER_COUNT" -gt 1 ]; then
        # Leave only while every other server is healthy, so the peers that remain keep quorum;
        # servers removed together leave one after another (each depends on the one before).
        deadline=$(($(now) + WAIT_SECONDS))
        until api /v1/operator/autopilot/health "$(token_file)" | grep -q '^{"Healthy":true'; do
            if [ "$(now)" -ge "$deadline" ]; then
                fail "autopilot has not reported the cluster healthy for ${WAIT_SECONDS}s, so leaving could cost quorum; bring the failed server back, or list a dead one in deadHosts, then re-run pulumi up"
            fi
            sleep 2
        done
    fi
    if [ "$ROLE" = server ]; then
        # Removal is permanent: leave so the Raft peer set shrinks cleanly instead of keeping a
        # failed peer that lowers the failure tolerance until autopilot reaps it.
        if CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$(token_file)" \
            "$BIN" leave >/dev/null 2>&1; then
            say "left the cluster"
        else
            fail "consul leave failed; check the cluster has a leader, or stop the agent by hand and run consul force-leave $NODE from another server"
        fi
    fi
    # Clients have leave_on_terminate: stopping them is a graceful leave.
    systemctl stop consul.service || fail "could not stop consul.service"
    say "agent stopped"
fi
STEP=remove
systemctl disable --quiet consul.service 2>/dev/null || true
rm -f "$UNIT_FILE" "$PROFILE"
# Snapshots: the timer, its units and script, and the local copies (the bucket keeps its own).
if [ -e "$SNAPSHOT_TIMER" ]; then systemctl disable --quiet --now "${SNAPSHOT_TIMER##*/}" 2>/dev/null || true; fi
rm -f "$SNAPSHOT_TIMER" "$SNAPSHOT_SERVICE" "$SNAPSHOT_BIN"
rm -rf "$SNAPSHOT_DIR"
# The DNS forwarder: without the agent, the Consul domain must not go to a port nobody answers on.
if [ -e "$RESOLVED_DROPIN" ]; then
    rm -f "$RESOLVED_DROPIN"
    systemctl try-restart systemd-resolved.service || true
fi
systemctl daemon-reload
removed="unit, config, keys, data"
# A downloaded binary is ours. A preinstalled one stays, and so does $BIN when it links to it: the
# link may as well be the image's own.
if [ "$INSTALL_MODE" = download ]; then
    rm -f "$BIN" "$BIN.previous" "$BIN.new"
    removed="$removed, binary"
fi
if [ -e "$USER_MARKER" ]; then
    userdel consul 2>/dev/null || true
    if getent group consul >/dev/null 2>&1; then groupdel consul || true; fi
    removed="$removed, consul user"
fi
rm -rf "$CONFIG_DIR" "$BACKUP" "$DATA_DIR"
say "$removed removed"
