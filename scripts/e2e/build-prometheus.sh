#!/usr/bin/env bash
# build-prometheus.sh — build the Prometheus server the metrics e2e suite runs on a test host.
#
# Why: Debian's prometheus package (bookworm 2.42) is built without Consul service discovery
# (its plugins list drops consul_sd_configs: promtool says "field consul_sd_configs not found"),
# and the suite must run the scrape config the program renders, consul_sd_configs included. So
# Prometheus comes from its Go module, as Consul does (build-consul.sh): the module copied to a
# writable dir, its generated plugins/plugins.go cut down to Consul discovery (file and http stay,
# from plugins/minimum.go: that is what Debian does to its list), `go build ./cmd/prometheus` as the
# main module (so its own replace directives hold). The web UI's assets are not built; the HTTP API
# the suite queries needs none.
#
# What: ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/prometheus-build-<module version>/prometheus.
# Prints the binary path as the last line on stdout; progress goes to stderr.
# Env: PROMETHEUS_MODULE_VERSION (default below), GO (default /usr/local/go/bin/go).
set -euo pipefail

# v0.53.3 is Prometheus 2.53.3 (the module is tagged v0.<minor>.<patch>), the 2.53 LTS line.
VERSION="${PROMETHEUS_MODULE_VERSION:-v0.53.3}"
GO="${GO:-/usr/local/go/bin/go}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
OUT_DIR="$CACHE_ROOT/prometheus-build-$VERSION"
BIN="$OUT_DIR/prometheus"

log() { printf '[build-prometheus] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

want="prometheus, version 2.${VERSION#v0.}"
cached() { [[ -x "$BIN" ]] && [[ "$("$BIN" --version 2>&1 | head -n 1)" == "$want"* ]]; }
if cached; then
    printf '%s\n' "$BIN"
    exit 0
fi
mkdir -p "$CACHE_ROOT"
# One build at a time (the prebuild beside the suite); a second caller waits and finds it cached.
exec 9>"$CACHE_ROOT/.prometheus-$VERSION.lock"
if ! flock -n 9; then
    log "waiting for the build of Prometheus $VERSION in progress"
    flock 9
fi
if cached; then
    printf '%s\n' "$BIN"
    exit 0
fi
[[ -x "$GO" ]] || GO="$(command -v go)" || die "Go is needed (on PATH or at /usr/local/go/bin/go)"
work="$(mktemp -d "$CACHE_ROOT/.prometheus-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
log "fetching github.com/prometheus/prometheus@$VERSION from the Go module proxy"
src="$(cd "$work" && GOFLAGS=-mod=mod "$GO" mod download -json "github.com/prometheus/prometheus@$VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$src" && -d "$src" ]] || die "the module download gave no directory"
cp -r "$src" "$work/prometheus"
chmod -R u+w "$work/prometheus"
cat > "$work/prometheus/plugins/plugins.go" <<'GO'
// Cut down by scripts/e2e/build-prometheus.sh: Consul discovery only (file and http: minimum.go).

package plugins

import (
	// Register consul plugin.
	_ "github.com/prometheus/prometheus/discovery/consul"
)
GO
log "building cmd/prometheus (a few minutes cold)"
mkdir -p "$OUT_DIR"
(cd "$work/prometheus" && CGO_ENABLED=0 "$GO" build -trimpath -o "$work/prometheus-bin" \
    -ldflags "-X github.com/prometheus/common/version.Version=2.${VERSION#v0.} -X github.com/prometheus/common/version.Branch=module" \
    ./cmd/prometheus) >&2
mv -f "$work/prometheus-bin" "$BIN"
"$BIN" --version 2>&1 | head -n 1 >&2
printf '%s\n' "$BIN"
