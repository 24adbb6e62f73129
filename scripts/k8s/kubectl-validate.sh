#!/usr/bin/env bash
# kubectl-validate.sh — install (once) and print the path of sigs.k8s.io/kubectl-validate.
#
# Why: the Kubernetes manifests this program renders are checked offline with the API server's own
# schema validation (tests/k8s-validate.test.ts). kubectl-validate carries the built-in OpenAPI
# specs of the Kubernetes versions it knows, so no cluster and no network are needed to validate.
#
# What: `go install sigs.k8s.io/kubectl-validate@<pinned>` from the Go module proxy into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/kubectl-validate-<version>/kubectl-validate
# Skips the build when the cached binary's embedded module version is the pinned one (a cold
# build takes about 10 minutes on 2 cores). Prints the binary path as the last line on stdout;
# progress goes to stderr.
#
# Env: KUBECTL_VALIDATE_VERSION (default pinned below), GO (default: go on PATH, else
#      /usr/local/go/bin/go).
set -euo pipefail

# v0.0.4 is the only version the Go module proxy serves (`go list -m -versions`); it carries the
# built-in schemas of Kubernetes 1.23 to 1.30.
VERSION="${KUBECTL_VALIDATE_VERSION:-v0.0.4}"
MODULE=sigs.k8s.io/kubectl-validate
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
OUT_DIR="$CACHE_ROOT/kubectl-validate-$VERSION"
BIN="$OUT_DIR/kubectl-validate"

log() { printf '[kubectl-validate] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

GO="${GO:-$(command -v go || true)}"
GO="${GO:-/usr/local/go/bin/go}"

# The module version the binary was built from, as `go version -m` reads it.
built_version() {
  "$GO" version -m "$1" 2>/dev/null | awk -v m="$MODULE" '$1 == "mod" && $2 == m { print $3 }'
}

cached_ok() {
  [[ -x "$BIN" ]] || return 1
  if [[ -x "$GO" ]]; then
    [[ "$(built_version "$BIN")" == "$VERSION" ]]
  else
    "$BIN" --help >/dev/null 2>&1
  fi
}

main() {
  if cached_ok; then
    printf '%s\n' "$BIN"
    return 0
  fi
  [[ -x "$GO" ]] || die "Go is needed to build $MODULE@$VERSION (looked for go on PATH and /usr/local/go/bin/go)"
  mkdir -p "$CACHE_ROOT"
  local tmp
  tmp="$(mktemp -d "$CACHE_ROOT/.kubectl-validate-build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  log "building $MODULE@$VERSION with $("$GO" version) (about 10 minutes cold on 2 cores)"
  local start=$SECONDS
  GOBIN="$tmp" "$GO" install "$MODULE@$VERSION" >&2
  [[ "$(built_version "$tmp/kubectl-validate")" == "$VERSION" ]] || die "the build did not produce $MODULE@$VERSION"
  mkdir -p "$OUT_DIR"
  mv -f "$tmp/kubectl-validate" "$BIN"
  log "built in $((SECONDS - start))s: $BIN"
  printf '%s\n' "$BIN"
}

main "$@"
