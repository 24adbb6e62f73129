# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The server-count Job's script (components/kubernetes/manifests/server-count-job.ts), run in the
# Consul image (curl, jq) after the StatefulSet has its new replica count: makes autopilot's
# MinQuorum the count, then waits until Raft's servers are exactly the StatefulSet's pods 0..COUNT-1,
# every one a healthy voter. On a scale-down autopilot prunes the departing servers once MinQuorum
# allows it (cleanup_dead_servers); on a scale-up it promotes the new ones after
# server_stabilization_time. Consul reads the agents' own min_quorum only when the cluster first
# bootstraps, hence this Job. A re-run finds both already true and changes nothing.
#
# Parameters, set read-only by the header: COUNT STATEFULSET CONSUL_ADDRS (space-separated
# https://host:port) CA_FILE HEADER_FILE (the file with `X-Consul-Token: <management token>`, empty
# with ACLs off) WAIT_SECONDS.
readonly COUNT STATEFULSET CONSUL_ADDRS CA_FILE HEADER_FILE WAIT_SECONDS
set -eu

# api PATH [curl options...]: a call to $server, an address that answered with a leader (behind a
# Service name, each call may reach another server; they forward these to the leader); fails on an
# HTTP error.
api() {
    path=$1
    shift
    if [ -n "$HEADER_FILE" ]; then
        curl -sS --fail --max-time 10 --cacert "$CA_FILE" -H "@$HEADER_FILE" "$@" "$server$path"
    else
        curl -sS --fail --max-time 10 --cacert "$CA_FILE" "$@" "$server$path"
    fi
}
deadline=$(($(date +%s) + WAIT_SECONDS))
# give_up MESSAGE: past the deadline, fail with MESSAGE.
give_up() {
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "$1 after ${WAIT_SECONDS}s" >&2
        exit 1
    fi
}

server=""
while [ -z "$server" ]; do
    for addr in $CONSUL_ADDRS; do
        server=$addr
        if api /v1/status/leader 2>/dev/null | grep -qE '^"[^"]+"$'; then break; fi
        server=""
    done
    if [ -z "$server" ]; then
        give_up "no Consul leader at $CONSUL_ADDRS"
        sleep 2
    fi
done

# Read, change, write back with the index read (cas), as `consul operator autopilot set-config` does.
config=$(api /v1/operator/autopilot/configuration)
current=$(printf '%s' "$config" | jq -r '.MinQuorum')
if [ "$current" = "$COUNT" ]; then
    echo "autopilot MinQuorum is $COUNT already"
else
    index=$(printf '%s' "$config" | jq -r '.ModifyIndex')
    written=$(printf '%s' "$config" | jq -c --argjson n "$COUNT" '.MinQuorum = $n' |
        api "/v1/operator/autopilot/configuration?cas=$index" -X PUT --data-binary @-)
    if [ "$written" != true ]; then
        echo "autopilot's configuration changed while this Job set it (cas $index); the Job runs again" >&2
        exit 1
    fi
    echo "autopilot MinQuorum $current -> $COUNT"
fi

# /v1/operator/autopilot/health answers 429 while the cluster is unhealthy: read it either way.
while :; do
    health=$(curl -sS --max-time 10 --cacert "$CA_FILE" ${HEADER_FILE:+-H "@$HEADER_FILE"} \
        "$server/v1/operator/autopilot/health" 2>/dev/null || true)
    servers=$(printf '%s' "$health" | jq -r '[.Servers[]? | "\(.Name):\(if .Voter then "voter" else "nonvoter" end):\(if .Healthy then "healthy" else "unhealthy" end)"] | join(" ")' 2>/dev/null || true)
    if printf '%s' "$health" | jq -e --argjson n "$COUNT" --arg sts "$STATEFULSET" '
        [.Servers[]?] as $s
        | ($s | length) == $n
        and ($s | all(.Voter and .Healthy))
        and ([$s[].Name] | sort) == ([range($n)] | map("\($sts)-\(.)") | sort)' >/dev/null 2>&1; then
        echo "Raft: $servers"
        exit 0
    fi
    give_up "Raft's servers are not ${STATEFULSET}-0..$((COUNT - 1)), all healthy voters (now: ${servers:-no answer})"
    sleep 2
done
