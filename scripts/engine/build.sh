#!/usr/bin/env bash
# Builds the Pulumi engine for this project from Go modules (the Go module proxy only; nothing is
# downloaded from anywhere else) and caches it by version under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/engine/<versions>/
#     bin/pulumi                     the CLI: github.com/pulumi/pulumi/pkg/v3 at the npm SDK's version
#     bin/pulumi-language-nodejs     the Node.js language host (scripts/engine/go: the proxy does not
#                                    serve the upstream host's module)
#     bin/pulumi-resource-stub       a preview-only stand-in provider, used by preview.sh only
#     providers/                     the provider binaries, kept off PATH (the engine would prefer
#                                    them to PULUMI_HOME's, with a warning)
#     pulumi-home/plugins/           PULUMI_HOME with the provider plugins that could be built:
#                                    tls and random from the upstream Terraform providers through the
#                                    Pulumi bridge (scripts/engine/bridged, scripts/engine/shims);
#                                    command from scripts/engine/go (command:remote:Command only:
#                                    the proxy does not serve the upstream module); kubernetes from
#                                    pulumi-kubernetes v4.25.0's provider module (the newest the proxy
#                                    serves: an untagged pseudo-version), installed as the npm SDK's
#                                    version 4.34.2, which the SDK asks the engine for
#     build-times.tsv                seconds per component and run (cold = built, warm = cached) and,
#                                    for kubernetes, the upstream provider version built
# A component whose output exists is skipped, so a second run costs seconds. Progress goes to
# stderr, a summary at the end. Exit status 1 when a component could not be built (the others are
# still built and cached).
#
# Usage: scripts/engine/build.sh [component...]   components: cli langhost stub command tls random kubernetes
#                                                 (default: all, kubernetes last)
#        scripts/engine/build.sh --print-cache-dir
# Environment: ENGINE_GO_JOBS (go build -p, default 1; builds run under nice -n 10),
#              ENGINE_LANGHOST=local|upstream (default local; upstream = the pinned pseudo-version of
#              the upstream host's module, which the proxy here does not serve: untested),
#              ENGINE_COMMAND=local|upstream (default local; upstream = github.com/pulumi/pulumi-command
#              at COMMAND_VERSION, which the proxy here does not serve: untested),
#              ENGINE_CACHE_DIR (overrides the cache root).
# shellcheck disable=SC2317 # the step_* functions are called indirectly, by run_component
set -euo pipefail

# Versions: the npm SDKs in package.json (checked in step 1).
PULUMI_VERSION=3.248.0
COMMAND_VERSION=1.2.1
TLS_VERSION=5.6.1
RANDOM_VERSION=4.21.2
KUBERNETES_VERSION=4.34.2
# The proxy serves no tag of github.com/pulumi/pulumi-kubernetes/provider/v4, only this pseudo-version:
# the commit of the v4.25.0 release. Its provider is installed under KUBERNETES_VERSION (the SDK asks
# for that version). It lacks 4.26.0's StatefulSet await fix (pulumi-kubernetes #4094); users' engines
# download the real 4.34.2. Its go.mod replaces sdk/v4 with ../sdk, which the module zip lacks: the
# published sdk/v4 v4.22.2 stands in (the newest served one whose pulumi sdk/v3 requirement, 3.153.1,
# keeps the provider's own pulumi pkg/v3 + sdk/v3 3.215.0: v4.29.0+ raise sdk/v3 past pkg/v3 3.215.0,
# which then does not compile, and pkg/v3 3.248.0 does not compile with the provider's pkg/gen).
KUBERNETES_PROVIDER_VERSION=v4.0.0-20260115033456-f47bc2d6f199
KUBERNETES_UPSTREAM_VERSION=4.25.0
KUBERNETES_SDK_GO_VERSION=v4.22.2
# The commit of the pulumi v3.248.0 release (tag pkg/v3.248.0) and the pseudo-version of the
# untagged language-host module at that commit.
PULUMI_COMMIT=dc7edd58bc13179f81b80983aab4eb7f74a01b41
LANGHOST_PSEUDO_VERSION=v3.0.0-20260624180030-${PULUMI_COMMIT:0:12}
# go.sum-style hash of the pkg/v3 module zip, checked after download (see GONOSUMDB below).
PULUMI_PKG_SUM='h1:MkvI29cYE3QUEvSl+7kZrV5lQ6CBIt54WjYt2HEXDSg='

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
versions="pulumi-${PULUMI_VERSION}_command-${COMMAND_VERSION}_tls-${TLS_VERSION}_random-${RANDOM_VERSION}_kubernetes-${KUBERNETES_VERSION}"
cache_root="${ENGINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/engine}"
cache="$cache_root/$versions"
bin="$cache/bin"
work="$cache/work"
export PULUMI_HOME="$cache/pulumi-home"
export PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -p=${ENGINE_GO_JOBS:-1}"
export PATH="/usr/local/go/bin:$PATH"
# The module proxy only: no fallback to fetching repositories directly.
GOPROXY="$(go env GOPROXY | sed -E 's/[,|]direct$//')"
export GOPROXY
# The checksum database does not know these module versions: pkg/v3 v3.248.0 (its zip hash is
# pinned below) and the Terraform providers' pseudo-versions (pinned by scripts/engine/bridged/go.sum).
export GONOSUMDB=github.com/pulumi/pulumi/pkg/v3,github.com/hashicorp/terraform-provider-tls,github.com/hashicorp/terraform-provider-random

if [ "${1:-}" = --print-cache-dir ]; then
    echo "$cache"
    exit 0
fi

log() { printf '[engine] %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
gobuild() { nice -n 10 go build -trimpath "$@"; }

declare -A status seconds notes
# What a component really is when its name and version do not say it (printed and recorded).
notes[kubernetes]="provider code pulumi-kubernetes v$KUBERNETES_UPSTREAM_VERSION ($KUBERNETES_PROVIDER_VERSION) as plugin $KUBERNETES_VERSION"
order=()
record() { # component status seconds
    order+=("$1")
    status[$1]=$2
    seconds[$1]=$3
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$1" "$2" "$3" "${notes[$1]:-}" >>"$cache/build-times.tsv"
}

# run_component NAME OUTPUT FUNCTION: skip when OUTPUT exists (warm), else time FUNCTION (cold).
# FUNCTION runs in a subshell with errexit on; its stderr is shown and kept in work/NAME.log.
run_component() {
    local name=$1 output=$2 fn=$3 start rc
    if [ -e "$output" ]; then
        log "$name: cached ($output)"
        record "$name" warm 0
        return 0
    fi
    start=$SECONDS
    set +e
    (
        set -e
        "$fn"
    ) 2>&1 >/dev/null | tee "$work/$name.log" >&2
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -eq 0 ] && [ -e "$output" ]; then
        log "$name: built in $((SECONDS - start)) s"
        record "$name" cold $((SECONDS - start))
    else
        local reason
        reason="$(grep -v '^\[engine\] [a-z]*: [a-z]' "$work/$name.log" | tail -n 1)"
        [ -n "$reason" ] || reason="$(tail -n 1 "$work/$name.log")"
        log "$name: FAILED after $((SECONDS - start)) s (log: $work/$name.log)"
        record "$name" "failed: ${reason#\[engine\] }" $((SECONDS - start))
    fi
}

# module_dir MODULE@VERSION: download a module through the proxy and print its read-only directory.
module_dir() {
    local json
    json="$(go mod download -json "$1" 2>/dev/null || true)"
    if grep -q '"Error"' <<<"$json" || ! grep -q '"Dir"' <<<"$json"; then
        local why
        why="$(sed -n 's/.*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" |
            sed -E 's/\\[nt]/ /g; s/reading https:[^ ]*: //g; s/  +/ /g')"
        echo "cannot download $1 through the Go module proxy: ${why:-no answer}" >&2
        return 1
    fi
    sed -n 's/.*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}

# module_copy MODULE@VERSION DEST: a writable copy of a module without its local (./ ../) replaces;
# the module paths whose local replaces were dropped are listed in DEST.dropped.
module_copy() {
    local src
    src="$(module_dir "$1")" || return 1
    rm -rf "$2"
    mkdir -p "$(dirname "$2")"
    cp -r "$src" "$2"
    chmod -R u+w "$2"
    (cd "$2" && go mod edit -json) | node -e '
        const mod = JSON.parse(require("fs").readFileSync(0, "utf8"));
        for (const r of mod.Replace || [])
            if (!r.New.Version && /^\.\.?\//.test(r.New.Path)) console.log(r.Old.Path);' >"$2.dropped"
    local old
    while read -r old; do
        (cd "$2" && go mod edit -dropreplace "$old")
        log "  dropped the local replace of $old"
    done <"$2.dropped"
}

step_cli() {
    local dir="$work/pulumi-pkg" sum
    log "cli: module github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION"
    sum="$(go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" |
        sed -n 's/.*"Sum": "\(.*\)",$/\1/p')"
    [ "$sum" = "$PULUMI_PKG_SUM" ] || die "pkg/v3 module hash $sum is not the pinned $PULUMI_PKG_SUM"
    module_copy "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "$dir"
    (
        cd "$dir"
        go mod edit -require "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
        go mod download github.com/pulumi/pulumi/sdk/v3
        log "cli: compiling ./cmd/pulumi (the longest step)"
        gobuild -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
            -o "$bin/pulumi.tmp" ./cmd/pulumi
    )
    [ "$("$bin/pulumi.tmp" version)" = "v$PULUMI_VERSION" ] || die "the built pulumi does not say v$PULUMI_VERSION"
    mv "$bin/pulumi.tmp" "$bin/pulumi"
}

# Hash of the project's own Go sources: their binaries are cached under it.
own_src_hash() { (cd "$here" && find "$@" -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12); }

# run_keyed_component NAME OUTPUT FUNCTION KEY: run_component, but another KEY than the cached
# output's discards it.
run_keyed_component() {
    local name=$1 output=$2 fn=$3 marker="$cache/.src-$1-$4"
    [ -e "$marker" ] || rm -f "$output"
    run_component "$name" "$output" "$fn"
    if [ -e "$output" ]; then
        rm -f "$cache/.src-$name-"*
        touch "$marker"
    fi
}

# run_own_component NAME OUTPUT FUNCTION SOURCE_DIR...: run_component for a binary built from the
# project's own sources: a change to them (another hash) discards the cached output.
run_own_component() {
    local name=$1 output=$2 fn=$3
    shift 3
    run_keyed_component "$name" "$output" "$fn" "$(own_src_hash "$@")"
}

step_langhost() {
    if [ "${ENGINE_LANGHOST:-local}" = upstream ]; then
        local dir="$work/pulumi-language-nodejs"
        log "langhost: upstream module at $LANGHOST_PSEUDO_VERSION"
        module_copy "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$LANGHOST_PSEUDO_VERSION" "$dir" || return 1
        (
            cd "$dir"
            go mod edit -require "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" \
                -require "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION"
            go mod download all
            gobuild -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
                -o "$bin/pulumi-language-nodejs.tmp" .
        )
    else
        # The proxy here does not serve the upstream module (no version of it, pseudo or other), so
        # this builds the project's minimal host (scripts/engine/go) on sdk/v3 at the same version.
        log "langhost: minimal host from scripts/engine/go (sdk/v3 v$PULUMI_VERSION)"
        log "langhost: go test (required packages, engine address, the TypeScript runtime options, RunPlugin of a policy pack)"
        (cd "$here/go" && nice -n 10 go test ./cmd/pulumi-language-nodejs >&2)
        (cd "$here/go" && gobuild -ldflags "-s -w -X main.version=$PULUMI_VERSION" \
            -o "$bin/pulumi-language-nodejs.tmp" ./cmd/pulumi-language-nodejs)
    fi
    mv "$bin/pulumi-language-nodejs.tmp" "$bin/pulumi-language-nodejs"
}

step_stub() {
    (cd "$here/go" && gobuild -ldflags "-s -w" -o "$bin/pulumi-resource-stub.tmp" ./cmd/pulumi-resource-stub)
    mv "$bin/pulumi-resource-stub.tmp" "$bin/pulumi-resource-stub"
}

# build_provider NAME VERSION MODULE@MODULE_VERSION VERSION_VARIABLE: build pulumi-resource-NAME from
# a copy of MODULE (local replaces dropped; a shim from scripts/engine/shims/NAME replaces a dropped
# local shim module) and install it into $PULUMI_HOME as plugin VERSION.
build_provider() {
    local name=$1 version=$2 module=$3 var=$4 dir="$work/pulumi-$1"
    log "$name: module $module"
    module_copy "$module" "$dir" || return 1
    (
        cd "$dir"
        local dropped
        while read -r dropped; do
            case "$dropped" in
            github.com/pulumi/pulumi/*) go mod edit -require "$dropped@v$PULUMI_VERSION" ;;
            github.com/pulumi/pulumi-kubernetes/sdk/v4) go mod edit -require "$dropped@$KUBERNETES_SDK_GO_VERSION" ;;
            *)
                [ -f "$here/shims/$name/go.mod" ] || die "$name replaces $dropped with a local directory that the module zip lacks, and scripts/engine/shims/$name has no replacement"
                go mod edit -replace "$dropped=$here/shims/$name"
                ;;
            esac
        done <"$dir.dropped"
        go mod download all
        # The requirements just edited leave go.mod short of indirect ones, which the build adds.
        export GOFLAGS="$GOFLAGS -mod=mod"
        if [ "$name" = kubernetes ]; then
            # The embedded schema: the module's schema.json with the plugin's version set in it.
            log "kubernetes: generating schema-embed.json (go run ./generate.go)"
            (cd "cmd/pulumi-resource-kubernetes" && VERSION=$version nice -n 10 go run ./generate.go)
        fi
        log "$name: compiling ./cmd/pulumi-resource-$name"
        gobuild -ldflags "-s -w -X $var=$version" -o "$cache/providers/pulumi-resource-$name" "./cmd/pulumi-resource-$name"
    ) || return 1
    [ -x "$bin/pulumi" ] || die "$name: built, but installing it needs the CLI: run with cli first"
    log "$name: installing into $PULUMI_HOME"
    pulumi plugin install resource "$name" "$version" --reinstall --file "$cache/providers/pulumi-resource-$name" >&2
}
step_command() {
    if [ "${ENGINE_COMMAND:-local}" = upstream ]; then
        build_provider command "$COMMAND_VERSION" "github.com/pulumi/pulumi-command/provider@v$COMMAND_VERSION" \
            github.com/pulumi/pulumi-command/provider/pkg/version.Version
        return
    fi
    # The proxy here does not serve github.com/pulumi/pulumi-command (403), so this builds the
    # project's provider for command:remote:Command (scripts/engine/go/cmd/pulumi-resource-command).
    log "command: command:remote:Command provider from scripts/engine/go (sdk/v3 v$PULUMI_VERSION)"
    log "command: go test (diff rules; SSH runs against an in-process SSH server)"
    (cd "$here/go" && nice -n 10 go test ./cmd/pulumi-resource-command >&2)
    (cd "$here/go" && gobuild -ldflags "-s -w -X main.version=$COMMAND_VERSION" \
        -o "$cache/providers/pulumi-resource-command" ./cmd/pulumi-resource-command)
    [ -x "$bin/pulumi" ] || die "command: built, but installing it needs the CLI: run with cli first"
    log "command: installing into $PULUMI_HOME"
    pulumi plugin install resource command "$COMMAND_VERSION" --reinstall \
        --file "$cache/providers/pulumi-resource-command" >&2
}
# build_bridged NAME VERSION: the provider from its upstream Terraform provider through the Pulumi
# bridge (scripts/engine/bridged + scripts/engine/shims/NAME), built in a copy of those sources
# because the schema is generated into it before the provider is compiled.
build_bridged() {
    local name=$1 version=$2 src="$work/bridged-src" tfgen
    tfgen="$work/pulumi-tfgen-bridged-$(own_src_hash bridged shims)"
    rm -rf "$src"
    mkdir -p "$src"
    cp -r "$here/bridged" "$here/shims" "$src/"
    if [ ! -x "$tfgen" ]; then
        log "$name: compiling the schema generator (scripts/engine/bridged, shared by tls and random)"
        rm -f "$work"/pulumi-tfgen-bridged-*
        (cd "$src/bridged" && gobuild -o "$tfgen" ./cmd/pulumi-tfgen-bridged)
    fi
    log "$name: generating the package schema"
    (cd "$src/bridged" && BRIDGED_PROVIDER=$name "$tfgen" schema \
        --out "cmd/pulumi-resource-$name" >&2)
    if [ -d "$repo/node_modules/@pulumi/$name" ]; then
        log "$name: checking the schema against the npm SDK @pulumi/$name"
        node "$here/check-schema.js" "$src/bridged/cmd/pulumi-resource-$name/schema.json" \
            "$repo/node_modules/@pulumi/$name" >&2
    else
        log "$name: no node_modules/@pulumi/$name (run npm ci): schema not checked against the SDK"
    fi
    log "$name: compiling ./cmd/pulumi-resource-$name"
    (cd "$src/bridged" && gobuild -ldflags "-s -w -X consulpulumi/bridged.Version=$version" \
        -o "$cache/providers/pulumi-resource-$name" "./cmd/pulumi-resource-$name")
    [ -x "$bin/pulumi" ] || die "$name: built, but installing it needs the CLI: run with cli first"
    log "$name: installing into $PULUMI_HOME"
    pulumi plugin install resource "$name" "$version" --reinstall --file "$cache/providers/pulumi-resource-$name" >&2
}
# The pulumi-tls and pulumi-random provider modules are not served by the module proxy here (403),
# so these two are built from the upstream Terraform providers with the project's own shims.
step_tls() { build_bridged tls "$TLS_VERSION"; }
step_random() { build_bridged random "$RANDOM_VERSION"; }
step_kubernetes() {
    build_provider kubernetes "$KUBERNETES_VERSION" \
        "github.com/pulumi/pulumi-kubernetes/provider/v4@$KUBERNETES_PROVIDER_VERSION" \
        github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(cli langhost stub command tls random kubernetes)

log "1. checking tools and versions (cache: $cache)"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
command -v node >/dev/null || die "node not found"
for pair in "pulumi=$PULUMI_VERSION" "command=$COMMAND_VERSION" "tls=$TLS_VERSION" "random=$RANDOM_VERSION" \
    "kubernetes=$KUBERNETES_VERSION"; do
    npm_version="$(node -p "require('$repo/package.json').dependencies['@pulumi/${pair%%=*}']")"
    [ "$npm_version" = "${pair#*=}" ] ||
        die "package.json has @pulumi/${pair%%=*} $npm_version, this script builds ${pair#*=}: update both together"
done
mkdir -p "$bin" "$work" "$PULUMI_HOME" "$cache/providers"
export PATH="$bin:$PATH"

step=2
for c in "${components[@]}"; do
    # One build of a component at a time per cache directory. The Kubernetes provider (its own work
    # dir, the longest build) has a lock of its own, so a caller that needs only the others does not
    # wait for it; the others share work dirs (tls and random their bridge sources), hence one lock.
    # Reopening fd 9 drops the lock the previous component held.
    exec 9>"$cache/.lock-$([ "$c" = kubernetes ] && echo kubernetes || echo engine)"
    flock -n 9 || { log "waiting for another build of $c (or of its group) in this cache" && flock 9; }
    case "$c" in
    cli) log "$step. Pulumi CLI v$PULUMI_VERSION" && run_component cli "$bin/pulumi" step_cli ;;
    langhost)
        log "$step. Node.js language host (${ENGINE_LANGHOST:-local})"
        # The cache holds the local host: the upstream one is rebuilt on every request.
        [ "${ENGINE_LANGHOST:-local}" = local ] || rm -f "$bin/pulumi-language-nodejs" "$cache"/.src-langhost-*
        run_own_component langhost "$bin/pulumi-language-nodejs" step_langhost go
        ;;
    stub)
        log "$step. preview-only stub provider"
        run_own_component stub "$bin/pulumi-resource-stub" step_stub go
        ;;
    tls | random)
        v_var="${c^^}_VERSION"
        log "$step. provider $c v${!v_var} (upstream Terraform provider through the bridge)"
        run_own_component "$c" "$PULUMI_HOME/plugins/resource-$c-v${!v_var}/pulumi-resource-$c" "step_$c" bridged shims
        ;;
    command)
        log "$step. provider command v$COMMAND_VERSION (${ENGINE_COMMAND:-local})"
        [ "${ENGINE_COMMAND:-local}" = local ] || rm -rf "$PULUMI_HOME/plugins/resource-command-v$COMMAND_VERSION" "$cache"/.src-command-*
        run_own_component command "$PULUMI_HOME/plugins/resource-command-v$COMMAND_VERSION/pulumi-resource-command" step_command go
        ;;
    kubernetes)
        log "$step. provider kubernetes v$KUBERNETES_VERSION (${notes[kubernetes]})"
        run_keyed_component kubernetes "$PULUMI_HOME/plugins/resource-kubernetes-v$KUBERNETES_VERSION/pulumi-resource-kubernetes" \
            step_kubernetes "$KUBERNETES_PROVIDER_VERSION-$KUBERNETES_SDK_GO_VERSION"
        ;;
    *) die "unknown component $c (cli langhost stub command tls random kubernetes)" ;;
    esac
    step=$((step + 1))
done

log "$step. summary ($cache)"
failed=0
for c in "${order[@]}"; do
    printf '%-11s %5s s  %s%s\n' "$c" "${seconds[$c]}" "${status[$c]}" "${notes[$c]:+ (${notes[$c]})}" >&2
    case "${status[$c]}" in failed*) failed=1 ;; esac
done
exit "$failed"
