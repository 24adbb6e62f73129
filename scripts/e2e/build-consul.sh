#!/usr/bin/env bash
# build-consul.sh — build a real Consul agent binary for the end-to-end tests.
#
# Why: this workplace cannot download HashiCorp's release binaries, but it can reach
# the Go module proxy. Consul's root module carries `exclude` (and in newer releases
# `replace`, pointing at its in-repo sub-modules) directives, so
# `go install github.com/hashicorp/consul@vX` is refused. We fetch the module, copy it
# to a writable dir, drop any replaces so the sub-modules (api, sdk, proto-public,
# envoyextensions, troubleshoot) resolve to the published versions that release's
# go.mod requires, and `go build` it as the main module.
#
# What: caches the binary at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/consul-<version>/consul
# next to a releases.hashicorp.com-style mirror layout:
#   consul_<version>_linux_amd64.zip  (contains `consul`)
#   consul_<version>_SHA256SUMS
# Skips the build when the cached binary reports the right version.
# Prints the binary path as the last line on stdout; progress goes to stderr.
#
# Env: CONSUL_VERSION (default pinned below), GO (default /usr/local/go/bin/go),
#      CONSUL_SUBMODULE_PINS (optional, e.g. "api@v1.25.1 sdk@v0.14.1": overrides the
#      sub-module versions taken from that release's go.mod).
set -euo pipefail

# 1.16.3: the newest MPL-2.0 release the proxy serves (it fixes CVE-2023-44487/39325). Its
# sub-modules are replaced in-repo and published at the versions its go.mod requires.
# (1.21.5 was tried: its envoyextensions v0.8.4 / proto-public v0.6.5 / troubleshoot
# v0.7.6 are not served by the Go module proxy, so the build cannot resolve them.)
CONSUL_VERSION="${CONSUL_VERSION:-1.16.3}"
CONSUL_VERSION="${CONSUL_VERSION#v}"
GO="${GO:-/usr/local/go/bin/go}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
OUT_DIR="$CACHE_ROOT/consul-$CONSUL_VERSION"
BIN="$OUT_DIR/consul"
ZIP_NAME="consul_${CONSUL_VERSION}_linux_amd64.zip"
SUMS_NAME="consul_${CONSUL_VERSION}_SHA256SUMS"

log() { printf '[build-consul] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

cached_ok() {
  [[ -x "$BIN" ]] || return 1
  local out
  out="$("$BIN" version 2>/dev/null)" || return 1
  [[ "${out%%$'\n'*}" == "Consul v$CONSUL_VERSION" ]]
}

# Build the release-mirror files next to the binary (idempotent).
make_mirror() {
  if [[ -s "$OUT_DIR/$ZIP_NAME" && -s "$OUT_DIR/$SUMS_NAME" ]] &&
    (cd "$OUT_DIR" && sha256sum --quiet -c "$SUMS_NAME" >/dev/null 2>&1); then
    return 0
  fi
  log "writing release mirror files in $OUT_DIR"
  rm -f "$OUT_DIR/$ZIP_NAME.tmp" "$OUT_DIR/$SUMS_NAME.tmp"
  (cd "$OUT_DIR" && zip -q -X -j "$ZIP_NAME.tmp" consul)
  mv -f "$OUT_DIR/$ZIP_NAME.tmp" "$OUT_DIR/$ZIP_NAME"
  (cd "$OUT_DIR" && sha256sum "$ZIP_NAME" >"$SUMS_NAME.tmp" && mv -f "$SUMS_NAME.tmp" "$SUMS_NAME")
}

main() {
  ensure_apt zip jq ca-certificates
  [[ -x "$GO" ]] || die "Go toolchain not found at $GO"
  mkdir -p "$CACHE_ROOT"

  # Serialise concurrent callers (parallel test suites) on one lock per version.
  exec 9>"$CACHE_ROOT/.build-consul-$CONSUL_VERSION.lock"
  flock 9

  if cached_ok; then
    log "cached: $BIN (Consul v$CONSUL_VERSION)"
    make_mirror
    printf '%s\n' "$BIN"
    return 0
  fi

  local start tmp
  start=$(date +%s)
  tmp="$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")"
  # shellcheck disable=SC2064  # expand $tmp now
  trap "chmod -R u+w '$tmp' 2>/dev/null || true; rm -rf '$tmp'" EXIT

  export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0 GOOS=linux GOARCH=amd64
  export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

  log "downloading github.com/hashicorp/consul@v$CONSUL_VERSION from the Go module proxy"
  local info dir commit
  info="$(cd "$tmp" && "$GO" mod download -json "github.com/hashicorp/consul@v$CONSUL_VERSION")"
  dir="$(jq -r '.Dir' <<<"$info")"
  commit="$(jq -r '.Origin.Hash // empty' <<<"$info")"
  [[ -d "$dir" ]] || die "module download gave no directory: $info"

  log "copying module source to $tmp/src"
  cp -a "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  cd "$tmp/src"

  # Drop the in-repo replaces; the published sub-module versions in `require` are the
  # ones tagged with this release. Excludes are kept: they are honoured for a main
  # module and keep the known-bad go-msgpack versions out (as upstream builds do).
  local edits=() path
  while IFS= read -r path; do
    [[ -n "$path" ]] && edits+=("-dropreplace=$path")
  done < <("$GO" mod edit -json | jq -r '.Replace // [] | .[].Old.Path')
  if ((${#edits[@]})); then
    log "dropping replace directives: ${edits[*]#-dropreplace=}"
    "$GO" mod edit "${edits[@]}"
    # The release's go.sum has no lines for sub-modules it replaced, and the checksum database is
    # not reachable here (the proxy answers its lookups with 404): take those few from the proxy
    # unverified by the checksum database. Every other module is still checked against go.sum.
    local nosumdb
    nosumdb="$(IFS=,; echo "${edits[*]#-dropreplace=}")"
    export GONOSUMDB="$nosumdb"
  fi
  local pin
  for pin in ${CONSUL_SUBMODULE_PINS:-}; do
    log "pinning github.com/hashicorp/consul/$pin"
    "$GO" mod edit "-require=github.com/hashicorp/consul/$pin"
  done
  log "sub-module versions: $("$GO" mod edit -json | jq -r '[.Require[] | select(.Path | startswith("github.com/hashicorp/consul/")) | "\(.Path | sub(".*/"; ""))@\(.Version)"] | join(" ")')"

  local build_date ldflags
  build_date="$(jq -r '.Time // empty' "$(jq -r '.Info' <<<"$info")" 2>/dev/null || true)"
  ldflags="-s -w -X github.com/hashicorp/consul/version.GitCommit=${commit:0:12}"
  [[ -n "$build_date" ]] && ldflags+=" -X github.com/hashicorp/consul/version.BuildDate=$build_date"
  # Version/VersionPrerelease come from the embedded version/VERSION file of the
  # release module (e.g. "1.16.2"); the build checks the result below.

  log "go build (CGO_ENABLED=0, $(nproc) cores; a cold build takes many minutes)"
  # (the long list of "go: downloading" lines is filtered out of the progress output)
  "$GO" build -mod=mod -trimpath -ldflags "$ldflags" -o "$tmp/consul" . 2>&1 |
    { grep -v '^go: downloading' || true; } >&2

  local got
  # (whole output captured, not piped to `head`: that can SIGPIPE under pipefail)
  got="$("$tmp/consul" version)"
  got="${got%%$'\n'*}"
  [[ "$got" == "Consul v$CONSUL_VERSION" ]] || die "built binary reports '$got', want 'Consul v$CONSUL_VERSION'"

  cd /
  mkdir -p "$OUT_DIR"
  mv -f "$tmp/consul" "$BIN.tmp"
  mv -f "$BIN.tmp" "$BIN"
  rm -f "$OUT_DIR/$ZIP_NAME" "$OUT_DIR/$SUMS_NAME"
  make_mirror
  log "built $got in $(($(date +%s) - start))s"
  printf '%s\n' "$BIN"
}

main "$@"; exit $?
