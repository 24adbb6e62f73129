#!/usr/bin/env bash
# Lints .github/workflows with actionlint (which also runs shellcheck on `run:` scripts when it is on
# PATH). Installs the pinned actionlint from the Go module proxy into .cache/bin on first use, so a
# fresh machine (or CI) needs only Go. Extra arguments are passed to actionlint (e.g. files to lint).
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
bin_dir="$PWD/.cache/bin"
actionlint="$bin_dir/actionlint-$ACTIONLINT_VERSION"

if [ ! -x "$actionlint" ]; then
    go=$(command -v go || true)
    if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
    if [ -z "$go" ]; then
        echo "actionlint.sh: Go is needed to install actionlint $ACTIONLINT_VERSION (apt-get install golang-go, or put go on PATH)" >&2
        exit 1
    fi
    echo "Installing actionlint $ACTIONLINT_VERSION into .cache/bin" >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    GOBIN="$tmp" GOFLAGS=-buildvcs=false "$go" install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
    mkdir -p "$bin_dir"
    mv "$tmp/actionlint" "$actionlint"
fi

exec "$actionlint" -no-color "$@"
