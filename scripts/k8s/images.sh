#!/usr/bin/env bash
# images.sh — build the container images the real one-node Kubernetes runs (issue 14), as archives
# that `ctr -n k8s.io images import` (containerd 1.6) loads under the names the manifests use.
#
# Why: no registry is reachable here, so the node cannot pull registry.k8s.io/pause or
# hashicorp/consul. We build both from what this machine has:
#   registry.k8s.io/pause:<PAUSE_TAG>  Kubernetes' own build/pause/linux/pause.c, gcc -static -Os;
#                                      entrypoint /pause, user 65535 (as upstream's image).
#   docker.io/hashicorp/consul:<v>     a small root filesystem: busybox (sh, chown, id, grep, ...),
#                                      curl and jq with exactly the libraries ldd names, the CA
#                                      bundle, the consul user (uid 100, gid 1000, as the official
#                                      image) and the Consul binary of scripts/e2e/build-consul.sh.
# Our manifests set every container's command, so there is no entrypoint script.
#
# What: each archive is an OCI image layout in a tar (with a docker-save manifest.json beside it,
# as `ctr images export` writes) at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi/k8s-images/<name>-<tag>-<image id>.tar
# Layers are tars with fixed mtimes, owners and order, gzip -n: the same inputs give the same
# image ID, and the ID (the config's digest, which names the layers' contents) is the cache key,
# so only compression and packing are skipped when nothing changed.
# Progress goes to stderr; the archive paths are the last lines on stdout: pause, then one per
# Consul version.
#
# Usage: images.sh [CONSUL_VERSION...]   (default: $CONSUL_VERSION, else 1.16.3)
# Env: PAUSE_TAG (default 3.10), KUBERNETES_VERSION (whose pause.c, default 1.34.4),
#      GO (default /usr/local/go/bin/go; only to fetch that module when it is not cached).
set -euo pipefail
shopt -s inherit_errexit # (failures inside $(...) stop the script too)

PAUSE_TAG="${PAUSE_TAG:-3.10}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.34.4}"
KUBERNETES_VERSION="${KUBERNETES_VERSION#v}"
GO="${GO:-/usr/local/go/bin/go}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/consul-pulumi"
OUT_DIR="$CACHE_ROOT/k8s-images"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Every file's mtime and the configs' `created` (2023-01-01T00:00:00Z): reproducible digests.
EPOCH=1672531200
CREATED="2023-01-01T00:00:00Z"
IMAGE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONSUL_UID=100
CONSUL_GID=1000
WORK="" # this run's scratch dir (main)

log() { printf '[k8s-images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/e2e/apt.sh
source "$HERE/../e2e/apt.sh"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# A layer: the named entries of $1 (relative paths), fixed order, mtimes and numeric owners
# (ownership is set in the staging tree), no atime/ctime or PID-named pax headers.
layer_tar() {
  local root="$1" out="$2"
  shift 2
  (cd "$root" && LC_ALL=C tar --create --file="$out" --sort=name --mtime="@$EPOCH" --numeric-owner \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -- "$@")
}

# Prints the image config for: user, entrypoint JSON, cmd JSON, labels JSON, layer tars...
image_config() {
  local user="$1" entrypoint="$2" cmd="$3" labels="$4" diff_ids=() layer
  shift 4
  for layer in "$@"; do diff_ids+=("sha256:$(sha256 "$layer")"); done
  jq -cnS --arg created "$CREATED" --arg user "$user" --arg path "PATH=$IMAGE_PATH" \
    --argjson entrypoint "$entrypoint" --argjson cmd "$cmd" --argjson labels "$labels" \
    --args '{
      created: $created, architecture: "amd64", os: "linux",
      config: ({Env: [$path], Cmd: $cmd, Labels: $labels, WorkingDir: "/"}
        + (if $user == "" then {} else {User: $user} end)
        + (if $entrypoint == null then {} else {Entrypoint: $entrypoint} end)),
      rootfs: {type: "layers", diff_ids: $ARGS.positional},
      history: [$ARGS.positional[] | {created: $created, created_by: "scripts/k8s/images.sh"}]
    }' "${diff_ids[@]}"
}

# Writes blob $1 into layout $2 and prints its descriptor for media type $3.
add_blob() {
  local file="$1" layout="$2" type="$3" digest size
  digest="$(sha256 "$file")"
  size="$(stat -c %s "$file")"
  cp "$file" "$layout/blobs/sha256/$digest"
  jq -cn --arg t "$type" --arg d "sha256:$digest" --argjson s "$size" '{mediaType: $t, digest: $d, size: $s}'
}

# Packs ref $1 (name:tag) with config $2 and layer tars $4... into archive $3 (OCI layout tar).
pack_image() {
  local ref="$1" config="$2" out="$3" work layout layer gz cfg mf layers=() paths=()
  shift 3
  work="$(mktemp -d "$OUT_DIR/.pack-XXXXXX")"
  layout="$work/layout"
  mkdir -p "$layout/blobs/sha256"
  for layer in "$@"; do
    gz="$work/$(basename "$layer").gz"
    gzip -n -6 -c "$layer" >"$gz"
    layers+=("$(add_blob "$gz" "$layout" application/vnd.oci.image.layer.v1.tar+gzip)")
    paths+=("blobs/sha256/$(sha256 "$gz")")
  done
  cfg="$(add_blob "$config" "$layout" application/vnd.oci.image.config.v1+json)"
  jq -cn --argjson c "$cfg" --args '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: $c, layers: [$ARGS.positional[] | fromjson]}' "${layers[@]}" >"$work/manifest.json"
  mf="$(add_blob "$work/manifest.json" "$layout" application/vnd.oci.image.manifest.v1+json)"
  # containerd names the image from io.containerd.image.name; ref.name is the OCI tag.
  jq -cn --argjson m "$mf" --arg ref "$ref" '{schemaVersion: 2, manifests: [$m + {
      annotations: {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": ($ref | sub(".*:"; ""))},
      platform: {architecture: "amd64", os: "linux"}}]}' >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  jq -cn --arg c "blobs/sha256/$(sha256 "$config")" --arg ref "$ref" --args \
    '[{Config: $c, RepoTags: [$ref], Layers: $ARGS.positional}]' "${paths[@]}" >"$layout/manifest.json"
  chmod -R u=rwX,go=rX "$layout"
  chown -R 0:0 "$layout"
  layer_tar "$layout" "$out.tmp" blobs index.json manifest.json oci-layout
  mv -f "$out.tmp" "$out"
  rm -rf "$work"
}

# Builds (or finds cached) the archive for ref $1 from layer tars $6...; prints its path.
# $2 cache name (<name>-<tag>), $3 user, $4 entrypoint JSON, $5 cmd JSON; labels are fixed.
image_archive() {
  local ref="$1" name="$2" user="$3" entrypoint="$4" cmd="$5" config id out labels
  shift 5
  labels="$(jq -cn --arg r "$ref" '{"org.opencontainers.image.ref.name": $r,
    "org.opencontainers.image.description": "built offline by consul-pulumi scripts/k8s/images.sh"}')"
  config="$WORK/$name.config.json"
  image_config "$user" "$entrypoint" "$cmd" "$labels" "$@" >"$config"
  id="$(sha256 "$config")"
  out="$OUT_DIR/$name-${id:0:16}.tar"
  if [[ -s "$out" ]]; then
    log "cached: $ref (image id sha256:${id:0:12}) $out"
  else
    log "packing $ref (image id sha256:${id:0:12})"
    pack_image "$ref" "$config" "$out" "$@"
    # Older archives of the same name and tag are stale now.
    find "$OUT_DIR" -maxdepth 1 -name "$name-*.tar" ! -path "$out" -delete
  fi
  log "$ref: $(du -h "$out" | cut -f1) archive, $(du -ch "$@" | tail -n1 | cut -f1) unpacked"
  printf '%s\n' "$out"
}

pause_source() {
  local modcache="$HOME/go/pkg/mod" dir info
  [[ -x "$GO" ]] && modcache="$("$GO" env GOMODCACHE)"
  dir="$modcache/k8s.io/kubernetes@v$KUBERNETES_VERSION"
  if [[ ! -f "$dir/build/pause/linux/pause.c" ]]; then
    [[ -x "$GO" ]] || die "Go toolchain not found at $GO (needed to fetch k8s.io/kubernetes)"
    log "downloading k8s.io/kubernetes@v$KUBERNETES_VERSION (for pause.c) from the Go module proxy"
    info="$(cd "$OUT_DIR" && GOTOOLCHAIN=local GOPROXY="${GOPROXY:-https://proxy.golang.org}" \
      "$GO" mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION")"
    dir="$(jq -r '.Dir // empty' <<<"$info")"
  fi
  [[ -f "$dir/build/pause/linux/pause.c" ]] || die "no build/pause/linux/pause.c under '$dir'"
  printf '%s\n' "$dir/build/pause/linux/pause.c"
}

build_pause() {
  local work="$1" src
  src="$(pause_source)"
  mkdir -p "$work/pause/root"
  cp "$src" "$work/pause/pause.c"
  # Upstream's flags (build/pause/Makefile); the version names the release the source came from.
  (cd "$work/pause" && gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_TAG-k8s-v$KUBERNETES_VERSION" \
    -o root/pause pause.c && strip root/pause)
  chmod 0755 "$work/pause/root/pause"
  layer_tar "$work/pause/root" "$work/pause/layer.tar" pause
  image_archive "registry.k8s.io/pause:$PAUSE_TAG" "pause-$PAUSE_TAG" 65535:65535 '["/pause"]' null \
    "$work/pause/layer.tar"
}

# Copies binary $2 into root $1 at the same path, with every library ldd resolves and the loader.
copy_with_libs() {
  local root="$1" bin="$2" lib
  install -D -m 0755 "$bin" "$root$bin"
  while IFS= read -r lib; do
    [[ -n "$lib" && ! -e "$root$lib" ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib" # (the loader keeps its exec bit: the kernel needs it)
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  [[ "$(chroot "$root" "$bin" --version 2>&1)" == *[0-9]* ]] || die "$bin does not run in the image root"
}

# The shared root filesystem of the Consul images (one layer, the same for every version).
build_consul_base() {
  local root="$1" applet
  mkdir -p "$root"/{bin,etc/ssl/certs,tmp,root,home/consul,consul/data,consul/config}
  install -m 0755 /bin/busybox "$root/bin/busybox"
  while IFS= read -r applet; do
    [[ -n "$applet" && "$applet" != busybox ]] && ln -s busybox "$root/bin/$applet"
  done < <(/bin/busybox --list)
  copy_with_libs "$root" /usr/bin/curl
  copy_with_libs "$root" /usr/bin/jq
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' "root:x:0:0:root:/root:/bin/sh" "consul:x:$CONSUL_UID:$CONSUL_GID::/home/consul:/bin/false" \
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" >"$root/etc/passwd"
  printf '%s\n' "root:x:0:" "consul:x:$CONSUL_GID:consul" "nogroup:x:65534:" >"$root/etc/group"
  printf '%s\n' "passwd: files" "group: files" "hosts: files dns" >"$root/etc/nsswitch.conf"
  chmod 0644 "$root"/etc/{passwd,group,nsswitch.conf}
  chown -R 0:0 "$root"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  # As the official image: the consul user owns /consul and its home.
  chown -R "$CONSUL_UID:$CONSUL_GID" "$root/consul" "$root/home/consul"
  [[ "$(chroot "$root" /bin/sh -c 'id consul')" == "uid=$CONSUL_UID(consul) gid=$CONSUL_GID(consul)"* ]] ||
    die "the image root's consul user is not $CONSUL_UID:$CONSUL_GID"
}

build_consul() {
  local work="$1" version="$2" out bin got
  out="$(CONSUL_VERSION="$version" bash "$HERE/../e2e/build-consul.sh")"
  bin="${out##*$'\n'}"
  got="$("$bin" version)"
  [[ "${got%%$'\n'*}" == "Consul v$version" ]] || die "$bin reports '${got%%$'\n'*}', want Consul v$version"
  mkdir -p "$work/consul-$version/root/bin"
  install -m 0755 -o 0 -g 0 "$bin" "$work/consul-$version/root/bin/consul"
  layer_tar "$work/consul-$version/root" "$work/consul-$version/layer.tar" bin/consul
  image_archive "docker.io/hashicorp/consul:$version" "consul-$version" "" null '["consul","version"]' \
    "$work/base.tar" "$work/consul-$version/layer.tar"
}

main() {
  local versions=("$@") v start=$SECONDS
  ((${#versions[@]})) || versions=("${CONSUL_VERSION:-1.16.3}")
  ensure_apt gcc libc6-dev busybox-static curl jq ca-certificates gzip tar
  mkdir -p "$OUT_DIR"
  umask 022
  # Serialise concurrent callers (parallel suites): they share the archives.
  exec 9>"$CACHE_ROOT/.k8s-images.lock"
  flock 9
  WORK="$(mktemp -d "$OUT_DIR/.build-XXXXXX")"
  # shellcheck disable=SC2064  # expand $WORK now
  trap "rm -rf '$WORK'" EXIT
  local outs=() out entries=()
  out="$(build_pause "$WORK")"
  outs+=("$out")
  build_consul_base "$WORK/base"
  mapfile -t entries < <(cd "$WORK/base" && LC_ALL=C ls -A)
  layer_tar "$WORK/base" "$WORK/base.tar" "${entries[@]}"
  for v in "${versions[@]}"; do
    out="$(build_consul "$WORK" "${v#v}")"
    outs+=("$out")
  done
  log "done in $((SECONDS - start))s"
  printf '%s\n' "${outs[@]}"
}

main "$@"; exit $?
