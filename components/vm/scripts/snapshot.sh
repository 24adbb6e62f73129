# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The snapshot script's body (components/vm/scripts.ts snapshotScript; common.sh runs first),
# installed on every server as /usr/local/bin/consul-snapshot (root only):
#   consul-snapshot save                  what consul-snapshot.service runs: on the Raft leader only,
#                                         consul snapshot save, inspect, copy to the bucket, prune
#   consul-snapshot list                  the snapshots in the bucket, oldest first
#   consul-snapshot restore NAME|latest   fetch one from the bucket, inspect it, restore it
#                                         (docs/runbooks/restore-snapshot.md)
# The bucket's secret key stays in the root-only rclone config, and tokens in their root-only
# files: neither is ever on a command line or printed.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from snapshotScript's params: NODE HTTPS_PORT ACL (1/0) REMOTE (rclone remote:bucket/path)
#   RETAIN WAIT_SECONDS; from PATHS: BIN CA_FILE MANAGEMENT_TOKEN SNAPSHOT_TOKEN SNAPSHOT_RCLONE
#   SNAPSHOT_DIR WORK_PARENT.
readonly NODE HTTPS_PORT ACL REMOTE RETAIN WAIT_SECONDS
readonly BIN CA_FILE MANAGEMENT_TOKEN SNAPSHOT_TOKEN SNAPSHOT_RCLONE SNAPSHOT_DIR WORK_PARENT
# Set first by common.sh and read there: STEP (named by say and fail), WORK (removed on exit).
# Read here too, so that shellcheck, which checks this file alone, sees them used.
: "${STEP?}" "${WORK?}"

# Names sort by time: consul-<UTC yyyymmddThhmmssZ>.snap.
NAME_PATTERN='^consul-[0-9]\{8\}T[0-9]\{6\}Z\.snap$'

# Milliseconds since the epoch (GNU date, as on the Debian hosts).
ms() {
    date +%s%3N
}

# rclone with the root-only config file, bounded so a dead endpoint fails the run.
rc() {
    rclone --config "$SNAPSHOT_RCLONE" --contimeout 10s --timeout 120s --retries 3 --low-level-retries 3 "$@"
}

# cli TOKEN_FILE ARGS...: the consul CLI against the local agent; the token is read from its file.
cli() {
    tf=$1
    shift
    CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$tf" "$BIN" "$@"
}

# The snapshots in the bucket, oldest first, into $WORK/remote.names.
remote_names() {
    if ! rc lsf --files-only "$REMOTE/" > "$WORK/remote.list" 2> "$WORK/rclone.err"; then
        fail "rclone cannot list $REMOTE ($(tail -n 1 "$WORK/rclone.err")); check snapshotS3Endpoint, snapshotS3Bucket and the credentials"
    fi
    { grep -e "$NAME_PATTERN" "$WORK/remote.list" || :; } | sort > "$WORK/remote.names"
}

# inspect FILE: consul snapshot inspect must accept it (else FILE is removed); sets index, its Raft
# index: the first "Index" line (the table of record types after it has an "Index" row too).
inspect() {
    if ! "$BIN" snapshot inspect "$1" > "$WORK/inspect.out" 2>&1; then
        rm -f "$1"
        fail "consul snapshot inspect rejects ${1##*/}: $(tail -n 1 "$WORK/inspect.out")"
    fi
    index=$(awk '$1 == "Index" { print $2; exit }' "$WORK/inspect.out")
}

save() {
    STEP=leader
    token=""
    if [ "$ACL" -eq 1 ]; then token=$SNAPSHOT_TOKEN; fi
    # Every server's timer fires; only the leader's run saves, so one snapshot is taken per run.
    if ! raft=$(api /v1/operator/raft/configuration "$token"); then
        fail "the local agent does not answer /v1/operator/raft/configuration (is consul running, with a leader? with ACLs, the snapshot token must exist: re-run pulumi up); see journalctl -u consul"
    fi
    if ! printf '%s\n' "$raft" | tr '{' '\n' | grep -F "\"Node\":\"$NODE\"" | grep -q -F '"Leader":true'; then
        say "not the Raft leader, nothing to do"
        return 0
    fi
    STEP=save
    install -d -m 0700 "$SNAPSHOT_DIR"
    name="consul-$(date -u +%Y%m%dT%H%M%SZ).snap"
    while [ -e "$SNAPSHOT_DIR/$name" ]; do
        sleep 1
        name="consul-$(date -u +%Y%m%dT%H%M%SZ).snap"
    done
    part="$SNAPSHOT_DIR/.$name.partial"
    started=$(ms)
    if ! cli "$token" snapshot save "$part" > "$WORK/save.out" 2>&1; then
        rm -f "$part"
        fail "consul snapshot save failed: $(tail -n 1 "$WORK/save.out")"
    fi
    save_ms=$(($(ms) - started))
    STEP=inspect
    inspect "$part"
    mv -f "$part" "$SNAPSHOT_DIR/$name"
    size=$(wc -c < "$SNAPSHOT_DIR/$name" | tr -d ' ')
    STEP=upload
    started=$(ms)
    if ! rc copyto "$SNAPSHOT_DIR/$name" "$REMOTE/$name" 2> "$WORK/rclone.err"; then
        fail "rclone could not copy $name to $REMOTE ($(tail -n 1 "$WORK/rclone.err")); it is kept in $SNAPSHOT_DIR"
    fi
    upload_ms=$(($(ms) - started))
    # Newest first; everything after the first RETAIN goes, here and in the bucket.
    STEP=prune
    { find "$SNAPSHOT_DIR" -maxdepth 1 -type f -name 'consul-*.snap' -printf '%f\n' |
        grep -e "$NAME_PATTERN" || :; } | sort -r | tail -n "+$((RETAIN + 1))" > "$WORK/old.local"
    while read -r old; do rm -f "$SNAPSHOT_DIR/$old"; done < "$WORK/old.local"
    remote_names
    sort -r "$WORK/remote.names" | tail -n "+$((RETAIN + 1))" > "$WORK/old.remote"
    while read -r old; do
        if ! rc deletefile "$REMOTE/$old" 2> "$WORK/rclone.err"; then
            fail "rclone could not delete the old snapshot $old from $REMOTE ($(tail -n 1 "$WORK/rclone.err"))"
        fi
    done < "$WORK/old.remote"
    STEP=save
    say "$name: $size bytes, Raft index $index, saved in $save_ms ms, uploaded in $upload_ms ms to $REMOTE; kept the newest $RETAIN here and there (pruned $(wc -l < "$WORK/old.local" | tr -d ' ') here, $(wc -l < "$WORK/old.remote" | tr -d ' ') there)"
}

list() {
    STEP=list
    remote_names
    cat "$WORK/remote.names"
}

# restore NAME|latest: from the bucket into the cluster, with the management token. A cluster
# whose servers lost their data comes back with its ACL system not bootstrapped: bootstrap it
# with the management token first (as the apply script does), so the restore is authorised; the
# snapshot then brings back its own ACL state, in which that token is the same.
restore() {
    STEP=restore
    if [ -z "$1" ]; then fail "usage: consul-snapshot restore NAME|latest (names: consul-snapshot list)"; fi
    remote_names
    if [ "$1" = latest ]; then
        name=$(tail -n 1 "$WORK/remote.names")
        if [ -z "$name" ]; then fail "there is no snapshot in $REMOTE"; fi
    elif grep -q -x -F -e "$1" "$WORK/remote.names"; then
        name=$1
    else
        fail "$1 is not in $REMOTE; consul-snapshot list shows what is"
    fi
    token=""
    if [ "$ACL" -eq 1 ]; then
        token=$MANAGEMENT_TOKEN
        if [ ! -r "$token" ]; then fail "the management token file $token is missing; run this on a server, as root"; fi
    fi
    started=$(ms)
    if ! rc copyto "$REMOTE/$name" "$WORK/$name" 2> "$WORK/rclone.err"; then
        fail "rclone could not fetch $name from $REMOTE ($(tail -n 1 "$WORK/rclone.err"))"
    fi
    fetch_ms=$(($(ms) - started))
    inspect "$WORK/$name"
    size=$(wc -c < "$WORK/$name" | tr -d ' ')
    deadline=$(($(now) + WAIT_SECONDS))
    until [ -n "$(leader "$CA_FILE")" ]; do
        if [ "$(now)" -ge "$deadline" ]; then fail "no cluster leader after ${WAIT_SECONDS}s; start consul on every server first (systemctl start consul)"; fi
        sleep 1
    done
    if [ -n "$token" ] && ! api /v1/acl/token/self "$token" > /dev/null; then
        printf '{"BootstrapSecret":"%s"}' "$(tr -d '\n' < "$token")" > "$WORK/bootstrap.json"
        code=$(curl -sS -o "$WORK/bootstrap.out" -w '%{http_code}' --max-time 10 --cacert "$CA_FILE" -X PUT \
            --data-binary "@$WORK/bootstrap.json" "https://127.0.0.1:$HTTPS_PORT/v1/acl/bootstrap" 2> /dev/null) || code=000
        rm -f "$WORK/bootstrap.json"
        if [ "$code" != 200 ]; then
            fail "the management token is not valid on this cluster, and bootstrapping the ACL system with it failed (HTTP $code: $(head -c 200 "$WORK/bootstrap.out")); see docs/runbooks/restore-snapshot.md"
        fi
        say "the cluster is new: ACL system bootstrapped with the management token"
        until api /v1/acl/token/self "$token" > /dev/null; do
            if [ "$(now)" -ge "$deadline" ]; then fail "the management token still does not work ${WAIT_SECONDS}s after the bootstrap"; fi
            sleep 1
        done
    fi
    started=$(ms)
    if ! cli "$token" snapshot restore "$WORK/$name" > "$WORK/restore.out" 2>&1; then
        fail "consul snapshot restore failed: $(tail -n 1 "$WORK/restore.out")"
    fi
    say "$name: $size bytes, Raft index $index, fetched in $fetch_ms ms, restored in $(($(ms) - started)) ms"
}

require_root
require_tools rclone curl awk
remove_stale_work
WORK=$(mktemp -d "$WORK_PARENT/consul-pulumi.XXXXXX") || fail "cannot create a temporary directory"
case "${1:-}" in
    save) save ;;
    list) list ;;
    restore) restore "${2:-}" ;;
    *) fail "usage: consul-snapshot save | list | restore NAME|latest" ;;
esac
