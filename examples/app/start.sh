#!/bin/sh
# The example app's container (the hashicorp/consul image, for its CLI). Every call goes to the
# node-local agent at CONSUL_HTTP_ADDR, verifies its certificate (CONSUL_CACERT,
# CONSUL_TLS_SERVER_NAME) and carries the app's token (CONSUL_HTTP_TOKEN, from a Secret): it
# registers the pod (POD_NAME) as a service instance, writes and reads back its own key, then lists the
# catalog's services every 30 s. On TERM it deregisters, so a deleted pod leaves no instance behind.
set -eu
id="consul-example-app-${POD_NAME}"
key="consul-example-app/${POD_NAME}"

consul services register -name=consul-example-app -id="$id" -port=8080
trap 'consul services deregister -id="$id"; exit 0' TERM INT
consul kv put "$key" "started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "kv $key: $(consul kv get "$key")"
while true; do
    # A failed listing (its agent restarting) is logged, not fatal: the app keeps running.
    consul catalog services || echo "catalog: the agent did not answer" >&2
    sleep 30 &
    wait $!
done
