# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# Helpers every VM host script starts with: components/vm/scripts.ts renders `#!/bin/sh`, the
# script's header (read-only NAME='value' lines), this file, then the script's own body file.
#
# Parameters: set read-only by every script's header, from PATHS (components/vm/paths.ts) and the
# script's params. Named here so that shellcheck (check-unassigned-uppercase) flags any other,
# misspelt, upper-case name; at run time this line changes nothing. Never assign one: it would abort.
#   NODE              the host's node name, in every message
#   HTTPS_PORT        the local agent's HTTPS port (api)
#   CA_FILE           our CA: what api trusts unless told otherwise
#   MANAGEMENT_TOKEN  the management token file (token_file; servers with ACLs only)
#   TOOL_PATH         PATH for the whole script
#   WORK_PARENT       where work directories consul-pulumi.XXXXXX are made (remove_stale_work)
#   STAGE_PARENT      where staging directories .consul-stage.XXXXXX are made (remove_stale_work)
readonly NODE HTTPS_PORT CA_FILE MANAGEMENT_TOKEN TOOL_PATH WORK_PARENT STAGE_PARENT
set -eu
umask 077
# A dropped SSH session must not kill the script half-way (between two file moves, say): it runs
# to the end, and output that can no longer be delivered is dropped.
trap '' HUP PIPE
PATH=$TOOL_PATH
export PATH
STEP=start
WORK=""
STAGE=""

say() {
    printf '%s %s: %s\n' "$NODE" "$STEP" "$1" || :
}

REPORTED=0
fail() {
    REPORTED=1
    printf '%s %s: FAILED: %s\n' "$NODE" "$STEP" "$1" >&2 || :
    exit 1
}

# Also on an unexpected exit (set -e): name the host and the step, never only an exit code.
cleanup() {
    status=$?
    if [ "$status" -ne 0 ] && [ "$REPORTED" -eq 0 ]; then
        printf '%s %s: FAILED: a command exited with status %s (its message is above); nothing after this step ran\n' \
            "$NODE" "$STEP" "$status" >&2 || :
    fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
    if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Work directories of a run that was killed before its EXIT trap (a reboot, kill -9).
remove_stale_work() {
    find "$WORK_PARENT" -maxdepth 1 -name 'consul-pulumi.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || :
    find "$STAGE_PARENT" -maxdepth 1 -name '.consul-stage.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || :
}

# api PATH [TOKEN_FILE] [CA_FILE]: GET on the local agent; the token goes to curl on stdin.
api() {
    api_ca=${3:-$CA_FILE}
    if [ -n "${2:-}" ]; then
        { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$2"; printf '"\n'; } |
            curl -sS -f --max-time 5 --cacert "$api_ca" --config - "https://127.0.0.1:$HTTPS_PORT$1" 2>/dev/null
    else
        curl -sS -f --max-time 5 --cacert "$api_ca" "https://127.0.0.1:$HTTPS_PORT$1" 2>/dev/null
    fi
}

# leader CA_FILE: the Raft leader as the local agent sees it; empty if there is none.
leader() {
    api /v1/status/leader "" "$1" | tr -d '"'
}

now() {
    date +%s
}

# The management token file, if this host has one (servers with ACLs).
token_file() {
    if [ -r "$MANAGEMENT_TOKEN" ]; then printf '%s' "$MANAGEMENT_TOKEN"; fi
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        fail "must run as root; use sshUser root or give the user passwordless sudo"
    fi
}

require_tools() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            fail "$tool is not installed; install it (e.g. apt-get install $tool) and re-run pulumi up"
        fi
    done
}
