#!/usr/bin/env bash
# prometheus.sh — the Debian `prometheus` package's binaries (prometheus, promtool), unpacked once
# into ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/prometheus-<version>/ for the tests: promtool
# checks the dashboard's expressions and the rendered scrape config, and the metrics e2e suite runs
# this prometheus on a test host. Unpacked (apt-get download + dpkg-deb -x) rather than installed:
# the package's postinst would start a Prometheus daemon on this machine. Needs no root.
# Prints the directory holding the binaries as the last line on stdout.
set -euo pipefail

log() { printf '[prometheus] %s\n' "$*" >&2; }

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
version="$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p')"
if [[ -z "$version" || "$version" == "(none)" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        apt-get update -qq >&2
        version="$(apt-cache policy prometheus | sed -n 's/^ *Candidate: //p')"
    fi
    [[ -n "$version" && "$version" != "(none)" ]] ||
        { log "apt knows no prometheus package; run apt-get update (as root) and try again"; exit 1; }
fi
dir="$CACHE_ROOT/prometheus-${version//[^A-Za-z0-9.+-]/_}"
if [[ ! -x "$dir/usr/bin/promtool" || ! -x "$dir/usr/bin/prometheus" ]]; then
    mkdir -p "$CACHE_ROOT"
    tmp="$(mktemp -d "$CACHE_ROOT/.prometheus.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    log "downloading the Debian prometheus package $version"
    (cd "$tmp" && apt-get download "prometheus=$version" >&2)
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    rm -rf "$dir"
    mv "$tmp/root" "$dir"
fi
printf '%s\n' "$dir/usr/bin"
