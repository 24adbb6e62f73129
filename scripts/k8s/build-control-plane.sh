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
# With --node it also builds what a one-node cluster runs beside them (tests/k8s-real/):
# kube-controller-manager, kube-scheduler, kubelet and kubectl, in the same kubernetes-<version>
# directory, and CoreDNS at coredns-<version>/coredns; their paths are printed first.
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
# The CoreDNS release kubeadm 1.34 installs.
COREDNS_VERSION="${COREDNS_VERSION:-1.12.1}"
COREDNS_VERSION="${COREDNS_VERSION#v}"
GO="${GO:-/usr/local/go/bin/go}"
JOBS="${K8S_GO_JOBS:-2}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
K8S_DIR="$CACHE_ROOT/kubernetes-$KUBERNETES_VERSION"
APISERVER="$K8S_DIR/kube-apiserver"
ETCD="$CACHE_ROOT/etcd-$ETCD_VERSION/etcd"
COREDNS="$CACHE_ROOT/coredns-$COREDNS_VERSION/coredns"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/e2e/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/apt.sh"

# binary_version FILE: "Kubernetes v<release>", as the server binaries' --version says it.
binary_version() {
  if [[ "${1##*/}" == kubectl ]]; then
    "$1" version --client -o json 2>/dev/null | jq -r '"Kubernetes " + .clientVersion.gitVersion'
  else
    "$1" --version 2>/dev/null
  fi
}

# binary_ok NAME: the cached Kubernetes binary reports this release.
binary_ok() {
  local bin="$K8S_DIR/$1"
  [[ -x "$bin" ]] && [[ "$(binary_version "$bin")" == "Kubernetes v$KUBERNETES_VERSION" ]]
}

etcd_ok() {
  [[ -x "$ETCD" ]] || return 1
  local out
  out="$("$ETCD" --version 2>/dev/null)" || return 1
  [[ "${out%%$'\n'*}" == "etcd Version: $ETCD_VERSION" ]]
}

coredns_ok() {
  [[ -x "$COREDNS" ]] && [[ "$("$COREDNS" -version 2>/dev/null | head -n 1)" == "CoreDNS-$COREDNS_VERSION" ]]
}

# CoreDNS's module has no replace directives: go install builds it as released.
build_coredns() {
  local tmp="$1" start=$SECONDS
  log "go install github.com/coredns/coredns@v$COREDNS_VERSION (-p $JOBS, nice -n 10)"
  GOBIN="$tmp/coredns-bin" GOWORK=off nice -n 10 "$GO" install -p "$JOBS" -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@v$COREDNS_VERSION" 2>&1 | { grep -v '^go: downloading' || true; } >&2
  mkdir -p "$(dirname "$COREDNS")"
  mv -f "$tmp/coredns-bin/coredns" "$COREDNS.tmp"
  mv -f "$COREDNS.tmp" "$COREDNS"
  coredns_ok || die "built coredns does not report CoreDNS-$COREDNS_VERSION"
  log "built CoreDNS $COREDNS_VERSION in $((SECONDS - start))s"
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
  local out="$1" ldflags="$2" tags="$3"
  shift 3
  log "go build $* (-p $JOBS, nice -n 10; cold, kube-apiserver and etcd take about 6 minutes on 2 cores)"
  nice -n 10 "$GO" build -p "$JOBS" -mod=mod -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out" "$@" 2>&1 |
    { grep -v '^go: downloading' || true; } >&2
}

# build_kubernetes TMP NAME...: the named ./cmd binaries, from one copy of the module, in one go build.
build_kubernetes() {
  local tmp="$1" start=$SECONDS info edits=() nosumdb=() path name pkgs=()
  shift
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
  for name in "$@"; do pkgs+=("./cmd/$name"); done
  mkdir -p "$tmp/out"
  # go.sum has no lines for the staging modules (they were local), and the checksum database is
  # not reachable here: those few come from the proxy unverified by it; every other module is
  # still checked against the release's go.sum.
  GONOSUMDB="$(IFS=,; echo "${nosumdb[*]}")" GOWORK=off \
    go_build "$tmp/out/" "$(apiserver_ldflags "$info")" providerless,notest "${pkgs[@]}"
  mkdir -p "$K8S_DIR"
  for name in "$@"; do
    local got
    got="$(binary_version "$tmp/out/$name")"
    [[ "$got" == "Kubernetes v$KUBERNETES_VERSION" ]] || die "built $name reports '$got'"
    mv -f "$tmp/out/$name" "$K8S_DIR/$name.tmp"
    mv -f "$K8S_DIR/$name.tmp" "$K8S_DIR/$name"
  done
  log "built $* ($KUBERNETES_VERSION) in $((SECONDS - start))s"
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

K8S_BINARIES=(kube-apiserver)
case "${1:-}" in
  --node) K8S_BINARIES+=(kube-controller-manager kube-scheduler kubelet kubectl) ;;
  "") ;;
  *) die "usage: $0 [--node]" ;;
esac

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

  local name missing=()
  for name in "${K8S_BINARIES[@]}"; do binary_ok "$name" || missing+=("$name"); done
  if ((${#missing[@]})); then (build_kubernetes "$tmp" "${missing[@]}"); else log "cached: $K8S_DIR"; fi
  if etcd_ok; then log "cached: $ETCD"; else (build_etcd "$tmp"); fi
  if [[ "${1:-}" == --node ]]; then
    if coredns_ok; then log "cached: $COREDNS"; else (build_coredns "$tmp"); fi
    printf '%s\n' "$COREDNS"
  fi
  for name in "${K8S_BINARIES[@]}"; do binary_ok "$name" || die "$K8S_DIR/$name is not Kubernetes v$KUBERNETES_VERSION"; done
  etcd_ok || die "$ETCD is not etcd $ETCD_VERSION"
  for name in "${K8S_BINARIES[@]:1}"; do printf '%s\n' "$K8S_DIR/$name"; done
  printf '%s\n%s\n' "$APISERVER" "$ETCD"
}

main "$@"; exit $?
