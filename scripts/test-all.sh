#!/usr/bin/env bash
# `npm run test:all`: every check and suite, in order, stopping at the first that fails.
#
# From empty caches, a third of the run is compiling from Go modules (Consul, Kubernetes, the Pulumi
# engine and the Kubernetes provider), and the real-host suites spend most of theirs waiting on their
# hosts. So scripts/prebuild.sh runs beside the suites at the lowest CPU priority and builds what the
# later ones need while the earlier ones wait. The suites build anything it has not (their scripts
# lock and cache), so the result does not depend on it; its report is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# Before the prebuild starts: it needs some of these tools too.
bash scripts/ensure-tools.sh

report="$(mktemp "${TMPDIR:-/tmp}/consul-pulumi-prebuild.XXXXXX")"
setsid nice -n 19 bash scripts/prebuild.sh >"$report" 2>"$report.log" &
prebuild=$!
finish() {
    local rc=$?
    # Still running means no suite needs what is left: stop it, with its go builds.
    kill -- -"$prebuild" 2>/dev/null && echo "[test-all] prebuild stopped (not needed any more)"
    echo "[test-all] prebuild (full log: $report.log):"
    cat "$report"
    exit "$rc"
}
trap finish EXIT

for suite in test test:k8s test:e2e test:engine test:k8s-real; do
    npm run "$suite"
done
