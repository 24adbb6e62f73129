#!/usr/bin/env bash
# build-control-plane.sh — build a real kube-apiserver and etcd from Go modules, for the tests that
# run the rendered manifests against a real API server (tests/kubernetes/server-validate.test.ts).
#
# Why: no release binaries can be downloaded here, but the Go module proxy serves k8s.io/kubernetes
# and go.etcd.io/etcd/server/v3. Neither builds with `go install`: both main modules carry
# `replace` directives to in-repo directories that their module zips do not hold. As for Consul
# (scripts/e2e/build-consul.sh) we download the module, copy it to a writable dir and rewrite those
# replaces: Kubernetes' `./staging/src/k8s.io/*` point at the published staging modules of the same
# release (v0.<minor>.<patch>), etcd's `../api` etc. are dropped so the released versions its
# go.mod requires are used.
#
# What: caches the binaries by version at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/kubernetes-<version>/kube-apiserver
#   ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/etcd-<version>/etcd
# and skips a build whose cached binary reports the right version. Progress goes to stderr; the two
# binary paths are the last two lines on stdout (kube-apiserver, then etcd).
#
# Env: KUBERNETES_VERSION, ETCD_VERSION (defaults pinned below), GO (default /usr/local/go/bin/go),
#      K8S_GO_JOBS (go build -p, default 2; builds run under nice -n 10).
set -euo pipefail

# 1.34: the oldest minor the proxy serves, and the newest whose kubelet still runs on cgroup v1
# without extra settings (issue 14); .4 is its newest patch served. etcd 3.6 is the line 1.34 is
# tested with; 3.6.16 is the newest 3.6 patch served.
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.34.4}"
KUBERNETES_VERSION="${KUBERNETES_VERSION#v}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
ETCD_VERSION="${ETCD_VERSION#v}"
GO="${GO:-/usr/local/go/bin/go}"
JOBS="${K8S_GO_JOBS:-2}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
APISERVER="$CACHE_ROOT/kubernetes-$KUBERNETES_VERSION/kube-apiserver"
ETCD="$CACHE_ROOT/etcd-$ETCD_VERSION/etcd"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/apt.sh"

apiserver_ok() {
  [[ -x "$APISERVER" ]] && [[ "$("$APISERVER" --version 2>/dev/null)" == "Kubernetes v$KUBERNETES_VERSION" ]]
}

etcd_ok() {
  [[ -x "$ETCD" ]] || return 1
  local out
  out="$("$ETCD" --version 2>/dev/null)" || return 1
  [[ "${out%%$'\n'*}" == "etcd Version: $ETCD_VERSION" ]]
}

# Downloads module@version and copies it to $2 (writable); prints the download's JSON.
fetch_module() {
  local module="$1" dest="$2" info dir
  log "downloading $module from the Go module proxy"
  info="$(cd "$(dirname "$dest")" && "$GO" mod download -json "$module")"
  dir="$(jq -r '.Dir // empty' <<<"$info")"
  [[ -d "$dir" ]] || die "module download gave no directory: $info"
  cp -a "$dir" "$dest"
  chmod -R u+w "$dest"
  printf '%s\n' "$info"
}

# go build in the current directory (the copied main module); the "go: downloading" lines are
# filtered out of the progress output.
go_build() {
  local out="$1" ldflags="$2" tags="$3" pkg="$4"
  log "go build $pkg (-p $JOBS, nice -n 10; cold, both binaries take about 6 minutes on 2 cores)"
  nice -n 10 "$GO" build -p "$JOBS" -mod=mod -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out" "$pkg" 2>&1 |
    { grep -v '^go: downloading' || true; } >&2
}

build_apiserver() {
  local tmp="$1" start=$SECONDS info edits=() nosumdb=() path
  info="$(fetch_module "k8s.io/kubernetes@v$KUBERNETES_VERSION" "$tmp/kubernetes")"
  cd "$tmp/kubernetes"
  # Each ./staging/src/k8s.io/X replace (the module zip has no staging/src: those are modules of
  # their own) becomes the published k8s.io/X at v0.<minor>.<patch>, the same release.
  local staging="v0.${KUBERNETES_VERSION#*.}"
  while IFS= read -r path; do
    [[ -n "$path" ]] || continue
    edits+=("-replace=$path=$path@$staging")
    nosumdb+=("$path")
  done < <("$GO" mod edit -json | jq -r '.Replace // [] | .[] | select(.New.Path | startswith("./staging/")) | .Old.Path')
  ((${#edits[@]})) || die "k8s.io/kubernetes@v$KUBERNETES_VERSION has no ./staging replaces to rewrite"
  log "pointing ${#edits[@]} staging replaces at the published modules @$staging"
  "$GO" mod edit "${edits[@]}"
  # go.sum has no lines for the staging modules (they were local), and the checksum database is
  # not reachable here: those few come from the proxy unverified by it; every other module is
  # still checked against the release's go.sum.
  GONOSUMDB="$(IFS=,; echo "${nosumdb[*]}")" GOWORK=off \
    go_build "$tmp/kube-apiserver" "$(apiserver_ldflags "$info")" providerless,notest ./cmd/kube-apiserver
  local got
  got="$("$tmp/kube-apiserver" --version)"
  [[ "$got" == "Kubernetes v$KUBERNETES_VERSION" ]] || die "built kube-apiserver reports '$got'"
  mkdir -p "$(dirname "$APISERVER")"
  mv -f "$tmp/kube-apiserver" "$APISERVER.tmp"
  mv -f "$APISERVER.tmp" "$APISERVER"
  log "built $got in $((SECONDS - start))s"
}

# The version variables hack/lib/version.sh sets, so --version and /version tell the release.
apiserver_ldflags() {
  local info="$1" commit pkg=k8s.io/component-base/version minor="${KUBERNETES_VERSION#*.}"
  commit="$(jq -r '.Origin.Hash // empty' <<<"$info")"
  printf '%s' "-s -w -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=${KUBERNETES_VERSION%%.*}" \
    " -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean"
}

build_etcd() {
  local tmp="$1" start=$SECONDS edits=() nosumdb=() path
  fetch_module "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "$tmp/etcd" >/dev/null
  cd "$tmp/etcd"
  # Drop the in-repo replaces (../api, ../client/v3, ...): require names the same release's
  # published modules. The FORBIDDEN_DEPENDENCY guards stay.
  while IFS= read -r path; do
    [[ -n "$path" ]] || continue
    edits+=("-dropreplace=$path")
    nosumdb+=("$path")
  done < <("$GO" mod edit -json | jq -r '.Replace // [] | .[] | select(.New.Path | startswith("../")) | .Old.Path')
  ((${#edits[@]})) && "$GO" mod edit "${edits[@]}"
  GONOSUMDB="$(IFS=,; echo "${nosumdb[*]}")" GOWORK=off go_build "$tmp/etcd-bin" "-s -w" "" .
  local got
  got="$("$tmp/etcd-bin" --version)"
  [[ "${got%%$'\n'*}" == "etcd Version: $ETCD_VERSION" ]] || die "built etcd reports '${got%%$'\n'*}'"
  mkdir -p "$(dirname "$ETCD")"
  mv -f "$tmp/etcd-bin" "$ETCD.tmp"
  mv -f "$ETCD.tmp" "$ETCD"
  log "built etcd $ETCD_VERSION in $((SECONDS - start))s"
}

main() {
  ensure_apt jq ca-certificates
  [[ -x "$GO" ]] || die "Go toolchain not found at $GO"
  mkdir -p "$CACHE_ROOT"
  # Serialise concurrent callers (parallel suites) on one lock per version pair.
  exec 9>"$CACHE_ROOT/.build-control-plane-$KUBERNETES_VERSION-$ETCD_VERSION.lock"
  flock 9

  export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0 GOOS=linux GOARCH=amd64
  export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
  local tmp
  tmp="$(mktemp -d "$CACHE_ROOT/.build-control-plane-XXXXXX")"
  # shellcheck disable=SC2064  # expand $tmp now
  trap "chmod -R u+w '$tmp' 2>/dev/null || true; rm -rf '$tmp'" EXIT

  if apiserver_ok; then log "cached: $APISERVER"; else (build_apiserver "$tmp"); fi
  if etcd_ok; then log "cached: $ETCD"; else (build_etcd "$tmp"); fi
  apiserver_ok || die "$APISERVER is not Kubernetes v$KUBERNETES_VERSION"
  etcd_ok || die "$ETCD is not etcd $ETCD_VERSION"
  printf '%s\n%s\n' "$APISERVER" "$ETCD"
}

main "$@"; exit $?
