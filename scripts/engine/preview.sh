#!/usr/bin/env bash
# Runs `pulumi preview` with the engine from scripts/engine/build.sh for every Pulumi.<stack>.yaml of
# the project, offline, and prints each result. Nothing outside a temporary directory is touched:
#   - the project is copied there (stack init writes an encryption salt into Pulumi.<stack>.yaml);
#   - state: `pulumi login file://<tmp>/state`; secrets: passphrase (a throw-away one);
#   - HOME is a temporary one holding a generated ~/.ssh/consul_ed25519 (the vm stacks read it);
#   - PULUMI_HOME is a temporary one: each provider plugin built into the engine cache is installed
#     there; a provider that could not be built is replaced by the preview-only stub
#     (scripts/engine/go/cmd/pulumi-resource-stub), and the output says so;
#   - Kubernetes stacks preview with kubernetes:renderYamlToDirectory set on the copy, so a real
#     Kubernetes provider renders YAML instead of contacting a cluster.
# Usage: scripts/engine/preview.sh [stack...]   (default: every Pulumi.<stack>.yaml)
# Environment: PREVIEW_KEEP=1 keeps the temporary directory. Exit status 1 if a preview failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
log() { printf '[preview] %s\n' "$*" >&2; }

log "1. engine (scripts/engine/build.sh cli langhost stub; cached after the first run)"
"$here/build.sh" cli langhost stub
cache="$("$here/build.sh" --print-cache-dir)"
bin="$cache/bin"

tmp="$(mktemp -d -t consul-preview.XXXXXX)"
if [ "${PREVIEW_KEEP:-0}" = 1 ]; then
    log "keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi

log "2. offline environment in $tmp"
export PATH="$bin:$PATH"
export HOME="$tmp/home" PULUMI_HOME="$tmp/pulumi-home"
export PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true PULUMI_CONFIG_PASSPHRASE="preview-only-passphrase"
mkdir -p "$HOME/.ssh" "$PULUMI_HOME" "$tmp/state"
ssh-keygen -q -t ed25519 -N '' -C consul-preview -f "$HOME/.ssh/consul_ed25519"
stubbed=()
for pair in $(node -e '
    const deps = require(process.argv[1]).dependencies;
    for (const n of ["command", "tls", "random", "kubernetes"]) console.log(n + "=" + deps["@pulumi/" + n]);' \
    "$repo/package.json"); do
    name=${pair%%=*} version=${pair#*=}
    real="$cache/pulumi-home/plugins/resource-$name-v$version/pulumi-resource-$name"
    if [ -x "$real" ]; then
        pulumi plugin install resource "$name" "$version" --file "$real" >/dev/null
    else
        pulumi plugin install resource "$name" "$version" --file "$bin/pulumi-resource-stub" >/dev/null
        stubbed+=("$name $version")
    fi
done
pulumi login --non-interactive "file://$tmp/state" >/dev/null
project="$tmp/project"
mkdir -p "$project"
(cd "$repo" && cp -r Pulumi.yaml Pulumi.*.yaml package.json tsconfig.json index.ts components "$project/")
ln -s "$repo/node_modules" "$project/node_modules"

stacks=("$@")
if [ ${#stacks[@]} -eq 0 ]; then
    for f in "$repo"/Pulumi.*.yaml; do
        s="${f##*/Pulumi.}"
        stacks+=("${s%.yaml}")
    done
fi

failed=0
step=3
results=()
for stack in "${stacks[@]}"; do
    log "$step. pulumi preview --stack $stack"
    (
        cd "$project"
        pulumi stack init "$stack" --secrets-provider passphrase --non-interactive >/dev/null
        if grep -q 'topology: *\(kubernetes\|hybrid\)' "Pulumi.$stack.yaml" ||
            ! grep -q 'consul:topology:' "Pulumi.$stack.yaml"; then
            mkdir -p "$tmp/rendered/$stack"
            pulumi config set --stack "$stack" kubernetes:renderYamlToDirectory "$tmp/rendered/$stack"
        fi
    )
    echo "=== stack $stack ==="
    if [ ${#stubbed[@]} -gt 0 ]; then
        echo "(preview-only stub providers, the real plugins are not built: ${stubbed[*]// /@})"
    fi
    rc=0
    (cd "$project" && pulumi preview --stack "$stack" --non-interactive --color never) >"$tmp/$stack.txt" 2>&1 || rc=$?
    grep -v '^@ previewing' "$tmp/$stack.txt" || true
    if [ "$rc" -eq 0 ]; then
        results+=("$stack: ok, $(grep -A3 '^Resources:' "$tmp/$stack.txt" | sed -n 's/^ *+ \([0-9]*\) to create/\1 to create/p')")
    else
        failed=1
        results+=("$stack: FAILED ($(grep -m1 -i 'error' "$tmp/$stack.txt" | sed 's/^ *//'))")
    fi
    step=$((step + 1))
done
log "$step. summary"
printf '%s\n' "${results[@]}"
exit "$failed"
