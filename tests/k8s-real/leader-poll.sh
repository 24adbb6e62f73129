#!/usr/bin/env bash
# leader-poll.sh — run on the Kubernetes node (tests/k8s-real/cluster.e2e.ts, by ssh with this file
# on stdin): every INTERVAL seconds, asks each server pod for its leader over HTTPS with the
# cluster's CA, until the file STOP exists. One line per round on stdout:
#   <unix ms> <servers that answered> <servers that named a leader>
# Pod addresses come from the cluster DNS on the node (they change when a pod is recreated).
# Each server is checked as TLS_NAME (server.<dc>.<domain>, which its certificate carries).
# Args: CA_FILE DNS_SERVER NAMESPACE SERVICE SERVERS HTTPS_PORT TLS_NAME INTERVAL STOP
set -euo pipefail
readonly CA_FILE="$1" DNS_SERVER="$2" NAMESPACE="$3" SERVICE="$4" SERVERS="$5" HTTPS_PORT="$6" TLS_NAME="$7"
readonly INTERVAL="$8" STOP="$9"

while [[ ! -e "$STOP" ]]; do
    answered=0
    leaders=0
    for ((k = 0; k < SERVERS; k++)); do
        name="$SERVICE-$k.$SERVICE.$NAMESPACE.svc.cluster.local"
        addr="$(dig +short +time=1 +tries=1 "@$DNS_SERVER" "$name" | head -n 1)" || addr=""
        [[ -n "$addr" ]] || continue
        if leader="$(curl -sS -f --max-time 1 --cacert "$CA_FILE" --resolve "$TLS_NAME:$HTTPS_PORT:$addr" \
            "https://$TLS_NAME:$HTTPS_PORT/v1/status/leader" 2>/dev/null)"; then
            answered=$((answered + 1))
            [[ "$leader" == '"'?*'"' ]] && leaders=$((leaders + 1))
        fi
    done
    printf '%s %s %s\n' "$(date +%s%3N)" "$answered" "$leaders"
    sleep "$INTERVAL"
done
