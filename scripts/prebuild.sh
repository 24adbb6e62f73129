#!/usr/bin/env bash
# Builds ahead of the suites what they would build for themselves, in the order `npm run test:all`
# needs it, by calling the suites' own build scripts with the suites' own arguments. Each of those
# locks and caches: a suite that reaches a build while this runs it waits for the lock and then finds
# it cached; a build this has not reached, or that failed here, the suite runs itself. So this only
# moves work earlier; it decides nothing. scripts/test-all.sh starts it beside the suites at the
# lowest CPU priority, which gives it the cores while the real-host suites wait on their hosts. (A
# suite that waits for a build this holds waits at that priority: when the suites keep both cores
# busy, longer than building it itself would take.)
#
# Prints one line per step (seconds, exit status) and exits 1 if any step failed.
# Usage: scripts/prebuild.sh
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
# const_in FILE NAME: the string constant NAME exported by FILE, where the suites take it from.
const_in() {
    local value
    value="$(sed -n "s/^export const $2 = \"\(.*\)\";\$/\1/p" "$repo/$1")"
    [[ -n "$value" ]] || { echo "[prebuild] no $2 in $1" >&2; exit 1; }
    printf '%s\n' "$value"
}
current="$(const_in components/config/schema.ts DEFAULT_CONSUL_VERSION)" || exit 1
previous="$(const_in tests/e2e/releases.ts PREVIOUS_VERSION)" || exit 1

failed=0
# step NAME COMMAND...: runs one build, its output to stderr, and reports it.
step() {
    local name="$1" start rc
    shift
    start=$(date +%s)
    printf '[prebuild] %s: started\n' "$name" >&2
    "$@" >/dev/null
    rc=$?
    printf '[prebuild] %-34s %5d s  exit %d\n' "$name" "$(($(date +%s) - start))" "$rc"
    ((rc == 0)) || failed=1
}

# test:k8s
step "kube-apiserver, etcd" bash "$here/k8s/build-control-plane.sh"
# test:e2e
step "consul $current" env CONSUL_VERSION="$current" bash "$here/e2e/build-consul.sh"
step "host image" bash "$here/e2e/image.sh"
step "consul $previous" env CONSUL_VERSION="$previous" bash "$here/e2e/build-consul.sh"
step "moto" bash "$here/e2e/moto.sh"
step "prometheus" bash "$here/e2e/build-prometheus.sh"
# test:engine (and the real cluster's provider); -p 2: at this priority it takes only idle cores
step "engine and providers" env ENGINE_GO_JOBS=2 bash "$here/engine/build.sh"
# test:k8s-real
step "kubernetes node binaries, coredns" bash "$here/k8s/build-control-plane.sh" --node
step "k8s-node image" env IMAGE_FLAVOR=k8s-node bash "$here/e2e/image.sh"
step "container images" bash "$here/k8s/images.sh" "$current" "$previous"
step "chromium" bash "$here/k8s/chromium.sh"
exit "$failed"
