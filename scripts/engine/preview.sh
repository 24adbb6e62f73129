#!/usr/bin/env bash
# Runs `pulumi preview` with the engine from scripts/engine/build.sh for every Pulumi.<stack>.yaml of
# the project, offline, and prints each result. Nothing outside a temporary directory is touched:
#   - the project is copied there (stack init writes an encryption salt into Pulumi.<stack>.yaml);
#   - state: `pulumi login file://<tmp>/state`; secrets: passphrase (a throw-away one);
#   - HOME is a temporary one with no SSH key, as in a pull request's preview: the vm stacks preview
#     without it (and say so);
#   - PULUMI_HOME is a temporary one: each provider plugin built into the engine cache is installed
#     there (the Kubernetes provider is built first if missing: pulumi-kubernetes v4.25.0's code as
#     plugin 4.34.2, see build.sh); a provider that could not be built is replaced by the preview-only
#     stub (scripts/engine/go/cmd/pulumi-resource-stub), and the output says so;
#   - Kubernetes stacks preview with kubernetes:renderYamlToDirectory set on the copy, so the real
#     Kubernetes provider renders YAML instead of contacting a cluster.
# With PREVIEW_APPLY_LOCAL=1 it then runs a real `pulumi up` of the resources whose providers were
# really built (tls, random: no hosts or cluster needed) and their parent components, and audits
# the resulting state for secrets that are also stored unencrypted (scripts/engine/audit-state.js).
# Usage: scripts/engine/preview.sh [stack...]   (default: every Pulumi.<stack>.yaml)
# Environment: PREVIEW_KEEP=1 keeps the temporary directory; PREVIEW_APPLY_LOCAL=1 as above.
# Exit status 1 if a preview, a local apply or an audit failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
log() { printf '[preview] %s\n' "$*" >&2; }

log "1. engine (scripts/engine/build.sh cli langhost stub command kubernetes; cached after the first run)"
"$here/build.sh" cli langhost stub command
"$here/build.sh" kubernetes || log "the Kubernetes provider could not be built: the stub stands in for it"
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
mkdir -p "$HOME" "$PULUMI_HOME" "$tmp/state"
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
(cd "$repo" && cp -r Pulumi.yaml Pulumi.*.yaml package.json tsconfig.json tsconfig.pulumi.json index.ts components "$project/")
ln -s "$repo/node_modules" "$project/node_modules"

stacks=("$@")
if [ ${#stacks[@]} -eq 0 ]; then
    for f in "$repo"/Pulumi.*.yaml; do
        s="${f##*/Pulumi.}"
        stacks+=("${s%.yaml}")
    done
fi

# apply_local STACK: `pulumi up` of the resources of really built providers and their ancestors,
# then the state audit.
apply_local() {
    local stack=$1 targets
    targets="$(cd "$project" && pulumi preview --stack "$stack" --json 2>/dev/null | node -e '
        const stubbed = new Set(process.argv[1].split(" ").filter(Boolean));
        const steps = JSON.parse(require("fs").readFileSync(0, "utf8")).steps;
        const byUrn = new Map(steps.map((s) => [s.urn, s.newState]));
        const pkg = (type) => type.split(":")[0];
        const wanted = new Set();
        for (const s of steps) {
            const st = s.newState;
            if (!st.custom || pkg(st.type) === "pulumi" || stubbed.has(pkg(st.type))) continue;
            for (let urn = s.urn; urn && !wanted.has(urn); urn = (byUrn.get(urn) || {}).parent) wanted.add(urn);
        }
        for (const urn of wanted) console.log("--target=" + urn);' "${stubbed[*]%% *}")"
    if [ -z "$targets" ]; then
        echo "(local apply: no resource of a really built provider)"
        return 0
    fi
    echo "--- local apply (real tls/random providers): $(grep -c . <<<"$targets") resources ---"
    # shellcheck disable=SC2086 # one --target=URN per word
    if ! (cd "$project" && pulumi up --stack "$stack" --yes --non-interactive --color never $targets) \
        >"$tmp/$stack-up.txt" 2>&1; then
        grep -v '^@ updating' "$tmp/$stack-up.txt"
        results+=("$stack: local apply FAILED")
        return 1
    fi
    grep -A3 '^Resources:' "$tmp/$stack-up.txt"
    (cd "$project" && pulumi stack export --stack "$stack" --show-secrets >"$tmp/$stack-dec.json" &&
        pulumi stack export --stack "$stack" >"$tmp/$stack-enc.json")
    if node "$here/audit-state.js" "$tmp/$stack-dec.json" "$tmp/$stack-enc.json"; then
        results+=("$stack: local apply ok, no secret stored in plaintext")
    else
        results+=("$stack: local apply ok, state audit found secrets stored in plaintext (above)")
        return 1
    fi
}

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
    if [ "$rc" -eq 0 ] && [ "${PREVIEW_APPLY_LOCAL:-0}" = 1 ]; then
        apply_local "$stack" || failed=1
    fi
    step=$((step + 1))
done
log "$step. summary"
printf '%s\n' "${results[@]}"
exit "$failed"
