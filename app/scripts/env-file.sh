# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# Installs an app's Consul environment file (app/vm-app.ts envFileScript): the file's content
# arrives on stdin (it holds the app's ACL token), lands root-only (0600, in a 0700 directory)
# and replaces the old file in one rename. `remove` deletes it (and the directory, if empty).
#
# Parameters, set read-only by the header: ACTION (install, remove), ENV_DIR, ENV_FILE.
readonly ACTION ENV_DIR ENV_FILE
set -eu
umask 077
fail() {
    printf 'consul-app env file: FAILED: %s\n' "$1" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "must run as root; use sshUser root or give the user passwordless sudo"
if [ "$ACTION" = remove ]; then
    rm -f "$ENV_FILE"
    rmdir "$ENV_DIR" 2>/dev/null || :
    printf 'removed %s\n' "$ENV_FILE"
    exit 0
fi
install -d -m 0700 -o root -g root "$ENV_DIR"
tmp=$(mktemp "$ENV_DIR/.env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
grep -q '^CONSUL_HTTP_ADDR=https://' "$tmp" || fail "stdin is not a Consul environment file (no https CONSUL_HTTP_ADDR)"
chown root:root "$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$ENV_FILE"
printf 'wrote %s (%s lines)\n' "$ENV_FILE" "$(wc -l < "$ENV_FILE")"
