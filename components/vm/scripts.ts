// The shell scripts that run on the VM hosts, as pure functions. Each script is a fixed POSIX sh
// body plus a header of quoted variable assignments rendered from a typed object, so no value is
// ever spliced into the body. Secrets never appear here: they arrive on stdin (a file bundle whose
// digest the script checks) or are read from root-only files on the host, and the scripts never
// print them (on failure the command provider puts the command text and its combined output in
// the error message, whatever `logging` says).

import * as crypto from "crypto";
import type { ReleaseKey } from "../security/release-trust";

/** Paths the scripts and the config agree on. */
export const PATHS = {
    binary: "/usr/local/bin/consul",
    configDir: "/etc/consul.d",
    mainConfig: "/etc/consul.d/consul.json",
    /**
     * Settings Consul reads only when an agent starts or a cluster bootstraps (retry_join,
     * bootstrap_expect, autopilot): a change here is written and reloaded, never a restart.
     */
    joinConfig: "/etc/consul.d/join.json",
    secretConfig: "/etc/consul.d/secrets.json",
    caFile: "/etc/consul.d/tls/ca.pem",
    /** Clients: our CA plus the Connect CA roots that sign their auto_encrypt certificate. */
    agentCaBundle: "/etc/consul.d/tls/agent-ca.pem",
    serverCert: "/etc/consul.d/tls/server.pem",
    serverKey: "/etc/consul.d/tls/server-key.pem",
    cliCert: "/etc/consul.d/cli/cli.pem",
    cliKey: "/etc/consul.d/cli/cli-key.pem",
    managementTokenFile: "/etc/consul.d/tokens/management",
    agentTokenFile: "/etc/consul.d/tokens/agent",
    dataDir: "/var/lib/consul",
    profile: "/etc/profile.d/consul-cli.sh",
    unit: "/etc/systemd/system/consul.service",
    /** Which rollout step (resource) owns the agent on this host: `server-<name>` or `client-<name>`. */
    owner: "/etc/consul.d/managed-by",
    /** Present when the apply script created the consul user (removal deletes only such a user). */
    userMarker: "/etc/consul.d/created-consul-user",
} as const;

/** One file the apply script writes. */
export interface NodeFile {
    readonly path: string;
    /** Octal, four digits. */
    readonly mode: string;
    readonly owner: "root" | "consul";
    readonly group: "root" | "consul";
    readonly content: string;
}

/** Single-quotes a value for POSIX sh. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'"'"'`)}'`;
}

/**
 * The stdin bundle: one line per file, `<path> <mode> <owner> <group> <base64>`. Sorted, so the
 * same files always give the same bundle (and digest).
 */
export function renderBundle(files: readonly NodeFile[]): string {
    const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const seen = new Set<string>();
    return sorted
        .map((f) => {
            if (!/^\/[a-z0-9._/-]+$/.test(f.path) || f.path.includes("..")) throw new Error(`bad file path ${f.path}`);
            if (!/^[0-7]{4}$/.test(f.mode)) throw new Error(`bad mode ${f.mode} for ${f.path}`);
            if (seen.has(f.path)) throw new Error(`file ${f.path} twice in one bundle`);
            seen.add(f.path);
            return `${f.path} ${f.mode} ${f.owner} ${f.group} ${Buffer.from(f.content, "utf8").toString("base64")}\n`;
        })
        .join("");
}

export function sha256Hex(text: string): string {
    return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}

type ScriptParams = Readonly<Record<string, string | number>>;

function header(params: ScriptParams): string {
    return Object.entries(params)
        .map(([name, value]) => {
            if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`bad script parameter name ${name}`);
            const text = String(value);
            if (/[\r\n\0]/.test(text)) throw new Error(`script parameter ${name} cannot contain a line break`);
            return `${name}=${shellQuote(text)}\n`;
        })
        .join("");
}

/**
 * Drops comment-only lines (the shebang stays): the comments are for readers of this file, and the
 * script travels in every command's inputs and state, quoted once more for `sh -c`.
 */
function compact(script: string): string {
    return script
        .split("\n")
        .filter((line, i) => i === 0 || !/^\s*#/.test(line))
        .join("\n");
}

/** How the command provider should invoke a script: as root, through sudo when the user is not. */
export function wrapForUser(script: string, sshUser: string): string {
    const run = `sh -c ${shellQuote(script)} consul-node`;
    return sshUser === "root" ? run : `sudo -n ${run}`;
}

// --- shared shell helpers ---------------------------------------------------------------------

const COMMON = String.raw`set -eu
umask 077
# A dropped SSH session must not kill the script half-way (between two file moves, say): it runs
# to the end, and output that can no longer be delivered is dropped.
trap '' HUP PIPE
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
STEP=start
WORK=""
STAGE=""

say() {
    printf '%s %s: %s\n' "$NODE" "$STEP" "$1" || :
}

REPORTED=0
fail() {
    REPORTED=1
    printf '%s %s: FAILED: %s\n' "$NODE" "$STEP" "$1" >&2 || :
    exit 1
}

# Also on an unexpected exit (set -e): name the host and the step, never only an exit code.
cleanup() {
    status=$?
    if [ "$status" -ne 0 ] && [ "$REPORTED" -eq 0 ]; then
        printf '%s %s: FAILED: a command exited with status %s (its message is above); nothing after this step ran\n' \
            "$NODE" "$STEP" "$status" >&2 || :
    fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
    if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Work directories of a run that was killed before its EXIT trap (a reboot, kill -9).
remove_stale_work() {
    find /tmp -maxdepth 1 -name 'consul-pulumi.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || :
    find /etc -maxdepth 1 -name '.consul-stage.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || :
}

# api PATH [TOKEN_FILE] [CA_FILE]: GET on the local agent; the token goes to curl on stdin.
api() {
    api_ca=${"$"}{3:-$CA_FILE}
    if [ -n "${"$"}{2:-}" ]; then
        { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$2"; printf '"\n'; } |
            curl -sS -f --max-time 5 --cacert "$api_ca" --config - "https://127.0.0.1:$HTTPS_PORT$1" 2>/dev/null
    else
        curl -sS -f --max-time 5 --cacert "$api_ca" "https://127.0.0.1:$HTTPS_PORT$1" 2>/dev/null
    fi
}

# leader CA_FILE: the Raft leader as the local agent sees it; empty if there is none.
leader() {
    api /v1/status/leader "" "$1" | tr -d '"'
}

now() {
    date +%s
}

# The management token file, if this host has one (servers with ACLs).
token_file() {
    if [ -r /etc/consul.d/tokens/management ]; then printf '%s' /etc/consul.d/tokens/management; fi
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        fail "must run as root; use sshUser root or give the user passwordless sudo"
    fi
}

require_tools() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            fail "$tool is not installed; install it (e.g. apt-get install $tool) and re-run pulumi up"
        fi
    done
}
`;

// --- apply: install, stage, validate, swap, restart or reload, wait ------------------------------

const APPLY_BODY = String.raw`
CA_FILE=/etc/consul.d/tls/ca.pem
AGENT_CA=/etc/consul.d/tls/agent-ca.pem
MAIN=/etc/consul.d/consul.json
JOIN=/etc/consul.d/join.json
SECRET=/etc/consul.d/secrets.json
UNIT_FILE=/etc/systemd/system/consul.service
BACKUP=/etc/.consul-previous
NEW_BIN=""

# transfer_target: "<raft id> updated" for a voter among UPDATED_SERVERS (the servers this rollout
# has already changed), so leadership moves once, to a server that will not restart again in this
# rollout; for the first server in the order, "<raft id> other" for any other voter. A transfer
# without a named target (Raft's own pick) was seen to leave the cluster leaderless for 1.6 s, a
# named one to hand over at once. Empty if there is no other voter.
transfer_target() {
    raft=$(api /v1/operator/raft/configuration "$(token_file)" | tr '{' '\n') || raft=""
    for addr in $UPDATED_SERVERS; do
        id=$(printf '%s\n' "$raft" | grep -F -e "\"Address\":\"$addr:" -e "\"Address\":\"[$addr]:" |
            grep -F '"Voter":true' | sed -n 's/.*"ID":"\([^"]*\)".*/\1/p' | head -n 1)
        if [ -n "$id" ]; then
            printf '%s updated' "$id"
            return 0
        fi
    done
    id=$(printf '%s\n' "$raft" | grep -F '"Voter":true' | grep -F '"Leader":false' |
        sed -n 's/.*"ID":"\([^"]*\)".*/\1/p' | head -n 1)
    if [ -n "$id" ]; then printf '%s other' "$id"; fi
    return 0
}

# transfer_leadership [ID]: asks Raft to hand leadership to ID, or to any up-to-date follower. Through
# the HTTP API: Consul 1.16's 'consul operator raft transfer-leader' parses -id but never sends it, so
# the CLI always lets Raft pick.
transfer_leadership() {
    { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
        curl -sS -f --max-time 30 --cacert "$CA_FILE" --config - -X POST \
            "https://127.0.0.1:$HTTPS_PORT/v1/operator/raft/transfer-leader${"$"}{1:+?id=$1}" 2>&1
}

STEP=preflight
require_root
require_tools systemctl base64 sha256sum install cmp stat curl awk
if [ "$INSTALL_MODE" = download ]; then require_tools gpgv; fi
remove_stale_work
WORK=$(mktemp -d /tmp/consul-pulumi.XXXXXX) || fail "cannot create a temporary directory"
cat > "$WORK/bundle"
got=$(sha256sum < "$WORK/bundle" | cut -d ' ' -f 1)
if [ "$got" != "$BUNDLE_SHA256" ]; then
    fail "the file bundle on stdin does not match its digest; re-run pulumi up"
fi
say "ok"

STEP=install
case "$(uname -m)" in
    x86_64 | amd64) ARCH=amd64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) fail "unsupported CPU architecture $(uname -m); only amd64 and arm64 releases are installed" ;;
esac
if ! getent group consul >/dev/null 2>&1; then
    groupadd --system consul || fail "could not create the consul group"
fi
created_user=0
if ! id consul >/dev/null 2>&1; then
    useradd --system --gid consul --home-dir /var/lib/consul --no-create-home --shell /bin/false consul ||
        fail "could not create the consul system user"
    created_user=1
fi
installed=""
if [ -x "$BIN" ]; then
    installed=$("$BIN" version 2>/dev/null | head -n 1) || installed=""
fi
if [ "$installed" = "Consul v$VERSION" ]; then
    say "consul $VERSION already installed"
elif [ "$INSTALL_MODE" = preinstalled ]; then
    found=$(command -v consul 2>/dev/null) || found=""
    if [ -z "$found" ]; then
        fail "installMode is preinstalled but no consul binary is on PATH; install Consul $VERSION or set installMode to download"
    fi
    found_version=$("$found" version 2>/dev/null | head -n 1) || found_version=""
    if [ "$found_version" != "Consul v$VERSION" ]; then
        fail "installMode is preinstalled and $found reports '$found_version', not Consul v$VERSION; install that version or change consulVersion"
    fi
    ln -sf "$found" "$BIN.new"
    NEW_BIN="$BIN.new"
    say "using preinstalled $found"
else
    zip="consul_${"$"}{VERSION}_linux_${"$"}{ARCH}.zip"
    base="$MIRROR/consul/$VERSION"
    if ! curl -fsSL --retry 3 --max-time 600 -o "$WORK/$zip" "$base/$zip"; then
        fail "could not download $base/$zip; check releaseMirrorUrl and the host's access to it"
    fi
    if ! curl -fsSL --retry 3 --max-time 60 -o "$WORK/SHA256SUMS" "$base/consul_${"$"}{VERSION}_SHA256SUMS"; then
        fail "could not download $base/consul_${"$"}{VERSION}_SHA256SUMS; check releaseMirrorUrl"
    fi
    if ! curl -fsSL --retry 3 --max-time 60 -o "$WORK/SHA256SUMS.sig" "$base/consul_${"$"}{VERSION}_SHA256SUMS.sig"; then
        fail "could not download $base/consul_${"$"}{VERSION}_SHA256SUMS.sig; a mirror must serve HashiCorp's signature with the release"
    fi
    # The hashes count only once the list is proven to be signed by the release key.
    printf '%s' "$RELEASE_KEYRING" | base64 -d > "$WORK/release-key.gpg" || fail "cannot decode the release key"
    if ! gpgv --homedir "$WORK" --keyring "$WORK/release-key.gpg" "$WORK/SHA256SUMS.sig" "$WORK/SHA256SUMS" > "$WORK/gpgv.out" 2>&1; then
        fail "consul_${"$"}{VERSION}_SHA256SUMS is not signed by the release key $RELEASE_KEY_FINGERPRINT ($(grep -m 1 -E 'BAD|no public key|Can.t check|invalid' "$WORK/gpgv.out" || tail -n 1 "$WORK/gpgv.out")): the mirror serves files that key did not sign; nothing was installed"
    fi
    want=$(awk -v f="$zip" '$2 == f { print $1 }' "$WORK/SHA256SUMS")
    if [ -z "$want" ]; then
        fail "$zip is not listed in consul_${"$"}{VERSION}_SHA256SUMS; check consulVersion and the mirror"
    fi
    have=$(sha256sum "$WORK/$zip" | cut -d ' ' -f 1)
    if [ "$have" != "$want" ]; then
        fail "SHA-256 of $zip is $have, expected $want: the download is corrupt or was tampered with; nothing was installed"
    fi
    mkdir "$WORK/unpacked"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$WORK/$zip" consul -d "$WORK/unpacked" || fail "could not unpack $zip"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -m zipfile -e "$WORK/$zip" "$WORK/unpacked" || fail "could not unpack $zip"
    else
        fail "neither unzip nor python3 is installed to unpack $zip; install unzip"
    fi
    install -m 0755 -o root -g root "$WORK/unpacked/consul" "$BIN.new" || fail "could not stage the consul binary"
    NEW_BIN="$BIN.new"
    new_version=$("$NEW_BIN" version 2>/dev/null | head -n 1) || new_version=""
    if [ "$new_version" != "Consul v$VERSION" ]; then
        rm -f "$NEW_BIN"
        fail "the downloaded binary reports '$new_version', not Consul v$VERSION"
    fi
    say "downloaded consul $VERSION ($ARCH), signature by $RELEASE_KEY_FINGERPRINT and SHA-256 verified"
fi
CONSUL=${"$"}{NEW_BIN:-$BIN}

STEP=layout
install -d -m 0750 -o root -g consul /etc/consul.d /etc/consul.d/tls
install -d -m 0700 -o root -g root /etc/consul.d/cli /etc/consul.d/tokens
install -d -m 0700 -o consul -g consul /var/lib/consul
# Only a user this program created is deleted again when the node is removed.
if [ "$created_user" -eq 1 ]; then : > "$USER_MARKER"; fi
say "ok"

STEP=stage
STAGE=$(mktemp -d /etc/.consul-stage.XXXXXX) || fail "cannot create a staging directory under /etc"
: > "$WORK/files"
while IFS=' ' read -r path mode owner group data; do
    if [ -z "$path" ]; then continue; fi
    case "$path" in
        *..*) fail "refusing to write $path" ;;
        /etc/consul.d/consul.json | /etc/consul.d/join.json | /etc/consul.d/secrets.json | /etc/consul.d/tls/*.pem) ;;
        /etc/consul.d/cli/*.pem | /etc/consul.d/tokens/management | /etc/consul.d/tokens/agent) ;;
        /etc/profile.d/consul-cli.sh | /etc/systemd/system/consul.service | /etc/consul.d/managed-by) ;;
        *) fail "refusing to write $path: not a file this program manages" ;;
    esac
    case "$mode" in
        [0-7][0-7][0-7][0-7]) ;;
        *) fail "bad mode $mode for $path" ;;
    esac
    case "$owner:$group" in
        root:root | root:consul | consul:consul) ;;
        *) fail "bad owner $owner:$group for $path" ;;
    esac
    mkdir -p "$STAGE$(dirname "$path")"
    printf '%s' "$data" | base64 -d > "$STAGE$path" || fail "could not decode $path from the bundle"
    chown "$owner:$group" "$STAGE$path"
    chmod "$mode" "$STAGE$path"
    printf '%s\n' "$path" >> "$WORK/files"
done < "$WORK/bundle"
say "$(wc -l < "$WORK/files" | tr -d ' ') files staged"

STEP=validate
for f in "$MAIN" "$JOIN" "$SECRET" "$UNIT_FILE"; do
    if [ ! -s "$STAGE$f" ]; then fail "$f is missing from the bundle"; fi
done
while read -r path; do
    case "$path" in
        *-key.pem) grep -q -e '-----BEGIN .*PRIVATE KEY-----' "$STAGE$path" || fail "$path is not a PEM private key" ;;
        *.pem) grep -q -e '-----BEGIN CERTIFICATE-----' "$STAGE$path" || fail "$path is not a PEM certificate" ;;
    esac
done < "$WORK/files"
if ! out=$("$CONSUL" validate "$STAGE$MAIN" "$STAGE$JOIN" "$STAGE$SECRET" 2>&1); then
    fail "consul validate rejected the new config, nothing was changed: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
fi
say "consul validate ok"

STEP=compare
: > "$WORK/changed"
while read -r path; do
    if [ -f "$path" ] && cmp -s "$STAGE$path" "$path" &&
        [ "$(stat -c '%a %U %G' "$STAGE$path")" = "$(stat -c '%a %U %G' "$path")" ]; then
        continue
    fi
    printf '%s\n' "$path" >> "$WORK/changed"
done < "$WORK/files"
if [ -n "$NEW_BIN" ]; then printf 'binary\n' >> "$WORK/changed"; fi
active=0
if systemctl is-active --quiet consul.service; then active=1; fi
ACTION=none
while read -r path; do
    case "$path" in
        "$MAIN" | "$SECRET" | "$UNIT_FILE" | binary) ACTION=restart ;;
        "$JOIN" | /etc/consul.d/tls/*) if [ "$ACTION" = none ]; then ACTION=reload; fi ;;
    esac
done < "$WORK/changed"
if [ "$active" -eq 0 ]; then ACTION=restart; fi
if [ ! -s "$WORK/changed" ] && [ "$ACTION" = none ]; then
    # Still wait below: a run that failed or was cut off after its swap left the files in place,
    # and this step must not end (letting the next server restart) before the cluster is healthy.
    say "nothing changed, agent left running"
else
    say "$(wc -l < "$WORK/changed" | tr -d ' ') changed, action: $ACTION"
fi

# Servers: remember whether the cluster had a leader (then it must have one again before we
# finish), and never restart the leader: hand leadership to another server first.
STEP=pre-restart
had_leader=0
if [ "$active" -eq 1 ] && [ -n "$(leader "$CA_FILE")" ]; then had_leader=1; fi
if [ "$ROLE" = server ] && [ "$ACTION" = restart ] && [ "$had_leader" -eq 1 ] && [ "$SERVER_COUNT" -gt 1 ]; then
    if api /v1/agent/self "$(token_file)" | grep -q '"leader":"true"'; then
        target=$(transfer_target)
        case "$target" in
            *" updated") say "this node is the Raft leader, transferring leadership to ${"$"}{target% *} (already updated)" ;;
            *" other") say "this node is the Raft leader, transferring leadership to ${"$"}{target% *} (none updated yet)" ;;
            *) say "this node is the Raft leader, transferring leadership" ;;
        esac
        target=${"$"}{target% *}
        # A transfer to the chosen server can be refused (it is still catching up, say): then to any
        # up-to-date follower, and only if that fails too is the leader restarted as the leader.
        if out=$(transfer_leadership "$target") || {
            [ -n "$target" ] && say "transfer to $target refused ($(printf '%s' "$out" | tail -n 1)), to any follower instead" &&
                out=$(transfer_leadership "")
        }; then
            # Stay up until another server is the leader: this node's vote may be what elects it.
            # Leadership can come back here (e2e runs saw it still here 10 s later, after elections
            # that just-restarted servers forced): ask again, to any follower, every 3 s.
            started=$(now)
            retry_at=$((started + 3))
            new_leader=""
            while [ -z "$new_leader" ]; do
                if ! api /v1/agent/self "$(token_file)" | grep -q '"leader":"true"'; then new_leader=$(leader "$CA_FILE"); fi
                if [ -n "$new_leader" ]; then break; fi
                if [ "$(now)" -ge $((started + 60)) ]; then
                    fail "this node is still the Raft leader 60s after handing over (last transfer-leader: $(printf '%s' "$out" | tail -n 1)); nothing was changed, retry"
                fi
                if [ "$(now)" -ge "$retry_at" ]; then
                    retry_at=$(($(now) + 3))
                    if api /v1/agent/self "$(token_file)" | grep -q '"leader":"true"'; then
                        say "still the leader $(($(now) - started))s after handing over, transferring again"
                        out=$(transfer_leadership "$target") || out=$(transfer_leadership "") || :
                    fi
                fi
                sleep 0.2
            done
            say "leadership transferred to $new_leader"
        else
            say "transfer-leader failed ($(printf '%s' "$out" | tail -n 1)), restarting the leader anyway"
        fi
    fi
fi

STEP=swap
# restore: puts back what the swap replaced; returns 1 if there was nothing to put back (a first
# install), so the caller knows whether an old agent can be started again.
restore() {
    restored=1
    while read -r path; do
        if [ "$path" = binary ]; then
            if [ -e "$BIN.previous" ]; then mv -f "$BIN.previous" "$BIN" && restored=0; fi
        elif [ -f "$BACKUP$path" ]; then
            mv -f "$BACKUP$path" "$path" && restored=0
        else
            rm -f "$path"
        fi
    done < "$WORK/changed"
    systemctl daemon-reload || true
    return "$restored"
}
rm -rf "$BACKUP"
rm -f "$BIN.previous"
install -d -m 0700 -o root -g root "$BACKUP"
while read -r path; do
    if [ "$path" = binary ]; then
        if [ -e "$BIN" ]; then ln -f "$BIN" "$BIN.previous" || fail "could not keep the previous binary"; fi
    elif [ -f "$path" ]; then
        mkdir -p "$BACKUP$(dirname "$path")"
        cp -p "$path" "$BACKUP$path" || fail "could not back up $path; nothing was changed"
    fi
done < "$WORK/changed"
while read -r path; do
    if [ "$path" = binary ]; then
        mv -f "$NEW_BIN" "$BIN" || { restore; fail "could not install the new binary; previous files restored"; }
    else
        mv -f "$STAGE$path" "$path" || { restore; fail "could not move $path into place; previous files restored"; }
    fi
done < "$WORK/changed"
systemctl daemon-reload
systemctl enable --quiet consul.service
if [ -s "$WORK/changed" ]; then say "new files in place (previous ones in $BACKUP)"; fi

STEP=$ACTION
# --no-block: a Type=notify agent is only ready once it has joined, which can need the servers
# after this one. So the wait below must tell the new process from the old one, which keeps
# answering (as healthy) until systemd gets to the queued restart: each start has a new InvocationID.
old_invocation=$(systemctl show -p InvocationID --value consul.service 2>/dev/null) || old_invocation=""
base_restarts=$(systemctl show -p NRestarts --value consul.service 2>/dev/null) || base_restarts=0
case "$ACTION" in
    restart) systemctl restart --no-block consul.service || { restore; fail "systemctl restart failed; previous files restored"; } ;;
    reload) systemctl reload consul.service || { restore; fail "systemctl reload failed; previous files restored"; } ;;
    *) say "no agent action needed" ;;
esac

# Clients: their HTTPS certificate comes from the Connect CA (auto_encrypt). Fetch its roots from
# a server, verified with our CA, and trust both for local calls.
probe_ca=$CA_FILE
if [ "$ROLE" = client ]; then
    for url in $SERVER_API_URLS; do
        if curl -sS -f --max-time 5 --cacert "$CA_FILE" -o "$WORK/roots.pem" "$url/v1/connect/ca/roots?pem=true" 2>/dev/null &&
            grep -q -e '-----BEGIN CERTIFICATE-----' "$WORK/roots.pem"; then
            cat "$CA_FILE" "$WORK/roots.pem" > "$WORK/agent-ca.pem"
            install -m 0644 -o root -g consul "$WORK/agent-ca.pem" "$AGENT_CA"
            break
        fi
    done
    if [ -s "$AGENT_CA" ]; then probe_ca=$AGENT_CA; fi
fi

STEP="wait"
need=api
if [ "$ROLE" = client ]; then
    need=leader
elif [ "$had_leader" -eq 1 ] || [ "$IS_LAST_SERVER" -eq 1 ]; then
    need=cluster
fi
waiting_for="the agent"
# Servers with ACLs: the management token becomes the bootstrap token once there is a leader. It
# is in no agent config, so only root on the servers holds it.
acl_ready() {
    tf=$(token_file)
    if [ -z "$tf" ] || api /v1/acl/token/self "$tf" >/dev/null; then return 0; fi
    waiting_for="the ACL system to accept the management token"
    printf '{"BootstrapSecret":"%s"}' "$(tr -d '\n' < "$tf")" > "$WORK/bootstrap.json"
    code=$(curl -sS -o "$WORK/bootstrap.out" -w '%{http_code}' --max-time 10 --cacert "$CA_FILE" -X PUT \
        --data-binary "@$WORK/bootstrap.json" "https://127.0.0.1:$HTTPS_PORT/v1/acl/bootstrap" 2>/dev/null) || code=000
    rm -f "$WORK/bootstrap.json"
    case "$code" in
        200) say "ACL system bootstrapped with the management token" ;;
        403) if grep -q 'no longer allowed' "$WORK/bootstrap.out"; then
            fail "the ACL system was bootstrapped with another token, so the management token from the stack is not valid; follow Consul's ACL bootstrap reset, then re-run pulumi up"
        fi ;;
    esac
    return 1
}
# An agent that systemd has had to restart three times (Restart=on-failure) will not come up: stop
# waiting for it (and roll back) instead of waiting out the whole timeout.
crash_loop=0
ready() {
    if [ "$ACTION" = restart ]; then
        restarts=$(systemctl show -p NRestarts --value consul.service 2>/dev/null) || restarts=0
        if [ "$restarts" -ge $((base_restarts + 3)) ] || { [ "$restarts" -lt "$base_restarts" ] && [ "$restarts" -ge 3 ]; }; then
            crash_loop=1
            waiting_for="the agent to stay up (systemd restarted it $((restarts - base_restarts)) times: it keeps exiting)"
            return 1
        fi
    fi
    if systemctl is-failed --quiet consul.service; then
        waiting_for="the agent (systemd reports consul.service failed)"
        return 1
    fi
    if [ "$ACTION" = restart ]; then
        waiting_for="systemd to restart consul.service"
        invocation=$(systemctl show -p InvocationID --value consul.service 2>/dev/null) || return 1
        if [ -z "$invocation" ] || [ "$invocation" = "$old_invocation" ]; then return 1; fi
    fi
    waiting_for="the local HTTPS API on 127.0.0.1:$HTTPS_PORT"
    if ! current=$(leader "$probe_ca"); then return 1; fi
    if [ "$need" = api ]; then return 0; fi
    waiting_for="a cluster leader"
    if [ -z "$current" ]; then return 1; fi
    if [ "$need" = leader ]; then return 0; fi
    if ! acl_ready; then return 1; fi
    waiting_for="$NODE to show as alive in consul members"
    if ! CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$(token_file)" \
        "$BIN" members -status=alive 2>/dev/null | awk -v n="$NODE" '$1 == n { found = 1 } END { exit !found }'; then
        return 1
    fi
    waiting_for="autopilot to report the cluster healthy"
    case "$(api /v1/operator/autopilot/health "$(token_file)")" in
        '{"Healthy":true'*) return 0 ;;
        *) return 1 ;;
    esac
}
deadline=$(($(now) + WAIT_SECONDS))
while ! ready; do
    if [ "$(now)" -ge "$deadline" ] || [ "$crash_loop" -eq 1 ]; then
        timed_out="gave up after $(($(now) + WAIT_SECONDS - deadline))s waiting for $waiting_for"
        if [ -s "$WORK/changed" ] && restore; then
            # The old binary and files are back; start them and see the old agent healthy again.
            old_invocation=$(systemctl show -p InvocationID --value consul.service 2>/dev/null) || old_invocation=""
            ACTION=restart
            crash_loop=0
            base_restarts=$(systemctl show -p NRestarts --value consul.service 2>/dev/null) || base_restarts=0
            systemctl reset-failed consul.service 2>/dev/null || :
            systemctl restart --no-block consul.service || :
            deadline=$(($(now) + WAIT_SECONDS))
            while ! ready; do
                if [ "$(now)" -ge "$deadline" ] || [ "$crash_loop" -eq 1 ]; then
                    fail "$timed_out; rolled back to the previous binary and files, but the old agent is not healthy either ($waiting_for); see journalctl -u consul on $NODE"
                fi
                sleep 2
            done
            fail "$timed_out; rolled back to the previous binary and files, and the old agent is running and healthy again; see journalctl -u consul on $NODE"
        fi
        fail "$timed_out; see journalctl -u consul on $NODE (check the firewall for ports 8300-8302 and that the other servers are up)"
    fi
    sleep 2
done
# Healthy: the previous files (old keys and tokens among them) and binary are no longer needed.
rm -rf "$BACKUP"
rm -f "$BIN.previous"
case "$need" in
    api) say "agent running (cluster still forming)" ;;
    leader) say "agent running, leader $current" ;;
    cluster) say "alive, leader $current, autopilot healthy" ;;
esac
`;

export interface ApplyScriptParams {
    readonly nodeName: string;
    readonly role: "server" | "client";
    readonly consulVersion: string;
    readonly installMode: "download" | "preinstalled";
    readonly releaseMirrorUrl: string;
    /** The key the release's SHA256SUMS must be signed with (installMode download). */
    readonly releaseKey: Pick<ReleaseKey, "keyringBase64" | "fingerprint">;
    readonly httpsPort: number;
    readonly serverCount: number;
    /** Servers: the last one in the rollout waits for a leader even on a first deploy. */
    readonly isLastServer: boolean;
    /** Clients: servers' HTTPS base URLs to fetch the Connect CA roots from. */
    readonly serverApiUrls: readonly string[];
    /**
     * Servers: the addresses of the servers before this one in the rollout (already changed by it).
     * A leader hands leadership to one of them, so it moves once rather than once per server.
     */
    readonly updatedServers: readonly string[];
    readonly waitSeconds: number;
    /** sha256 of the stdin bundle; also makes the command change whenever the files do. */
    readonly bundleSha256: string;
}

/** Installs Consul, stages and validates the bundle from stdin, swaps it in, restarts/reloads, waits. */
export function applyScript(p: ApplyScriptParams): string {
    if (!/^[0-9a-f]{64}$/.test(p.bundleSha256)) throw new Error("bundleSha256 must be a sha256 hex digest");
    return compact(
        "#!/bin/sh\n# consul-pulumi: apply the agent config on one host\n" +
            header({
                NODE: p.nodeName,
                ROLE: p.role,
                VERSION: p.consulVersion,
                INSTALL_MODE: p.installMode,
                USER_MARKER: PATHS.userMarker,
                MIRROR: p.releaseMirrorUrl,
                // Only a host that downloads needs the key (7.5 kB in every command).
                RELEASE_KEYRING: p.installMode === "download" ? p.releaseKey.keyringBase64 : "",
                RELEASE_KEY_FINGERPRINT: p.releaseKey.fingerprint,
                BIN: PATHS.binary,
                HTTPS_PORT: p.httpsPort,
                SERVER_COUNT: p.serverCount,
                IS_LAST_SERVER: p.isLastServer ? 1 : 0,
                SERVER_API_URLS: p.serverApiUrls.join(" "),
                UPDATED_SERVERS: p.updatedServers.join(" "),
                WAIT_SECONDS: p.waitSeconds,
                BUNDLE_SHA256: p.bundleSha256,
            }) +
            COMMON +
            APPLY_BODY,
    );
}

// --- remove ------------------------------------------------------------------------------------

const REMOVE_BODY = String.raw`
CA_FILE=/etc/consul.d/tls/ca.pem
STEP=leave
require_root
# When a host moves between serverHosts and clientHosts, or is renamed, the new resource's create
# runs before the old one's delete: leave the agent alone if another resource owns it now.
if [ -r /etc/consul.d/managed-by ] && [ "$(cat /etc/consul.d/managed-by)" != "$OWNER_ID" ]; then
    say "the agent here is now managed as $(cat /etc/consul.d/managed-by), not $OWNER_ID: left as is"
    exit 0
fi
if systemctl is-active --quiet consul.service; then
    if [ "$ROLE" = server ] && [ "$SERVER_COUNT" -gt 1 ]; then
        # Leave only while every other server is healthy, so the peers that remain keep quorum;
        # servers removed together leave one after another (each depends on the one before).
        deadline=$(($(now) + WAIT_SECONDS))
        until api /v1/operator/autopilot/health "$(token_file)" | grep -q '^{"Healthy":true'; do
            if [ "$(now)" -ge "$deadline" ]; then
                fail "autopilot has not reported the cluster healthy for ${"$"}{WAIT_SECONDS}s, so leaving could cost quorum; bring the failed server back, or list a dead one in deadHosts, then re-run pulumi up"
            fi
            sleep 2
        done
    fi
    if [ "$ROLE" = server ]; then
        # Removal is permanent: leave so the Raft peer set shrinks cleanly instead of keeping a
        # failed peer that lowers the failure tolerance until autopilot reaps it.
        if CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$(token_file)" \
            "$BIN" leave >/dev/null 2>&1; then
            say "left the cluster"
        else
            fail "consul leave failed; check the cluster has a leader, or stop the agent by hand and run consul force-leave $NODE from another server"
        fi
    fi
    # Clients have leave_on_terminate: stopping them is a graceful leave.
    systemctl stop consul.service || fail "could not stop consul.service"
    say "agent stopped"
fi
STEP=remove
systemctl disable --quiet consul.service 2>/dev/null || true
rm -f /etc/systemd/system/consul.service /etc/profile.d/consul-cli.sh
systemctl daemon-reload
removed="unit, config, keys, data"
# A downloaded binary is ours. A preinstalled one stays, and so does $BIN when it links to it: the
# link may as well be the image's own.
if [ "$INSTALL_MODE" = download ]; then
    rm -f "$BIN" "$BIN.previous" "$BIN.new"
    removed="$removed, binary"
fi
if [ -e "$USER_MARKER" ]; then
    userdel consul 2>/dev/null || true
    if getent group consul >/dev/null 2>&1; then groupdel consul || true; fi
    removed="$removed, consul user"
fi
rm -rf /etc/consul.d /etc/.consul-previous /var/lib/consul
say "$removed removed"
`;

export interface RemoveScriptParams {
    readonly nodeName: string;
    /** Servers in the cluster this one leaves (itself included) when it was last deployed. */
    readonly serverCount: number;
    readonly waitSeconds: number;
    /** The owner id the apply script wrote (`<role>-<node name>`). */
    readonly ownerId: string;
    readonly role: "server" | "client";
    readonly httpsPort: number;
    /** As for the apply script: a downloaded binary is removed with the node, a preinstalled one stays. */
    readonly installMode: "download" | "preinstalled";
}

/** The delete script: graceful leave, then the unit, config, keys, data, binary and user go. */
export function removeScript(p: RemoveScriptParams): string {
    return compact(
        "#!/bin/sh\n# consul-pulumi: remove the agent from one host\n" +
            header({
                NODE: p.nodeName,
                OWNER_ID: p.ownerId,
                ROLE: p.role,
                BIN: PATHS.binary,
                HTTPS_PORT: p.httpsPort,
                INSTALL_MODE: p.installMode,
                USER_MARKER: PATHS.userMarker,
                SERVER_COUNT: p.serverCount,
                WAIT_SECONDS: p.waitSeconds,
            }) +
            COMMON +
            REMOVE_BODY,
    );
}

// --- ACL bootstrap -------------------------------------------------------------------------------

const ACL_BODY = String.raw`
CA_FILE=/etc/consul.d/tls/ca.pem
AGENT_TOKEN=/etc/consul.d/tokens/agent
STEP=acl
require_root
require_tools curl
WORK=$(mktemp -d /tmp/consul-pulumi.XXXXXX) || fail "cannot create a temporary directory"
deadline=$(($(now) + WAIT_SECONDS))
# The last server's step bootstrapped the ACL system with the management token; wait until it works.
until [ -n "$(leader "$CA_FILE")" ] && api /v1/acl/token/self "$(token_file)" >/dev/null; do
    if [ "$(now)" -ge "$deadline" ]; then
        fail "timed out after ${"$"}{WAIT_SECONDS}s waiting for a leader and a working management token; see journalctl -u consul on $NODE"
    fi
    sleep 2
done
# Upserted on every run, so a changed policy reaches the existing agent token.
printf '%s' "$POLICY_JSON" > "$WORK/policy.json"
policy_id=$(api "/v1/acl/policy/name/$POLICY_NAME" "$(token_file)" | tr ',' '\n' |
    sed -n 's/^{*"ID":"\([^"]*\)"$/\1/p' | head -n 1) || policy_id=""
if [ -n "$policy_id" ]; then
    { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
        curl -sS -f --max-time 10 --cacert "$CA_FILE" --config - -X PUT --data-binary "@$WORK/policy.json" \
            "https://127.0.0.1:$HTTPS_PORT/v1/acl/policy/$policy_id" >/dev/null 2>&1 ||
        fail "could not update ACL policy $POLICY_NAME"
    say "policy $POLICY_NAME updated"
else
    { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
        curl -sS -f --max-time 10 --cacert "$CA_FILE" --config - -X PUT --data-binary "@$WORK/policy.json" \
            "https://127.0.0.1:$HTTPS_PORT/v1/acl/policy" >/dev/null 2>&1 ||
        fail "could not create ACL policy $POLICY_NAME"
    say "policy $POLICY_NAME created"
fi
if api /v1/acl/token/self "$AGENT_TOKEN" >/dev/null; then
    say "agent token exists"
else
    printf '{"SecretID":"%s","Description":"%s","Policies":[{"Name":"%s"}]}' \
        "$(tr -d '\n' < "$AGENT_TOKEN")" "$TOKEN_DESCRIPTION" "$POLICY_NAME" > "$WORK/token.json"
    { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
        curl -sS -f --max-time 10 --cacert "$CA_FILE" --config - -X PUT --data-binary "@$WORK/token.json" \
            "https://127.0.0.1:$HTTPS_PORT/v1/acl/token" >/dev/null 2>&1 ||
        fail "could not create the agent token"
    say "agent token created"
fi
`;

export interface AclScriptParams {
    readonly nodeName: string;
    readonly httpsPort: number;
    readonly policyName: string;
    /** The policy as the ACL API takes it (rendered JSON, no secret). */
    readonly policyJson: string;
    readonly waitSeconds: number;
}

/** Creates the agent policy and the agent token (with the SecretID from the host's token file) if absent. */
export function aclScript(p: AclScriptParams): string {
    return compact(
        "#!/bin/sh\n# consul-pulumi: agent ACL policy and token, idempotent\n" +
            header({
                NODE: p.nodeName,
                HTTPS_PORT: p.httpsPort,
                POLICY_NAME: p.policyName,
                POLICY_JSON: p.policyJson,
                TOKEN_DESCRIPTION: "Consul agents (consul-pulumi)",
                WAIT_SECONDS: p.waitSeconds,
            }) +
            COMMON +
            ACL_BODY,
    );
}

// --- prune: remove dead hosts from the cluster, from a live server ------------------------------

const PRUNE_BODY = String.raw`
CA_FILE=/etc/consul.d/tls/ca.pem
STEP=prune
require_root
cli() {
    CONSUL_HTTP_ADDR="https://127.0.0.1:$HTTPS_PORT" CONSUL_CACERT="$CA_FILE" CONSUL_HTTP_TOKEN_FILE="$(token_file)" \
        "$BIN" "$@"
}
# raft_id NODE: the node's Raft server ID, empty if it is not a peer.
raft_id() {
    api /v1/operator/raft/configuration "$(token_file)" | tr '{' '\n' | grep -F "\"Node\":\"$1\"" |
        sed -n 's/.*"ID":"\([^"]*\)".*/\1/p' | head -n 1
}
for dead in $DEAD_NODES; do
    if cli members 2>/dev/null | awk -v n="$dead" '$1 == n { found = 1 } END { exit !found }'; then
        out=$(cli force-leave -prune "$dead" 2>&1) || fail "consul force-leave -prune $dead failed: $out"
        say "$dead force-left and pruned from the member list"
    fi
    # A server also leaves the Raft peer set; force-leave does that through the leader, but not
    # when the peer never joined serf again, so remove it by ID as well.
    id=$(raft_id "$dead")
    if [ -n "$id" ]; then
        if out=$(cli operator raft remove-peer -id="$id" 2>&1); then
            say "$dead removed from the Raft peers"
        elif [ -n "$(raft_id "$dead")" ]; then
            fail "could not remove $dead ($id) from the Raft peers: $out"
        else
            say "$dead left the Raft peers"
        fi
    fi
done
STEP="wait"
deadline=$(($(now) + WAIT_SECONDS))
until [ -n "$(leader "$CA_FILE")" ] && api /v1/operator/autopilot/health "$(token_file)" | grep -q '^{"Healthy":true'; do
    if [ "$(now)" -ge "$deadline" ]; then
        fail "timed out after ${"$"}{WAIT_SECONDS}s waiting for a leader and a healthy autopilot after pruning; see consul operator raft list-peers on $NODE"
    fi
    sleep 2
done
say "dead hosts pruned ($DEAD_NODES); leader $(leader "$CA_FILE"), autopilot healthy"
`;

export interface PruneScriptParams {
    /** The live server the prune runs on. */
    readonly nodeName: string;
    readonly httpsPort: number;
    /** Node names to remove from the member list and the Raft peers. */
    readonly deadNodes: readonly string[];
    readonly waitSeconds: number;
}

/** Force-leaves and prunes dead nodes, removes dead servers from Raft, then waits for health. */
export function pruneScript(p: PruneScriptParams): string {
    for (const name of p.deadNodes) {
        if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) throw new Error(`bad node name ${name}`);
    }
    return compact(
        "#!/bin/sh\n# consul-pulumi: prune dead hosts from the cluster\n" +
            header({
                NODE: p.nodeName,
                BIN: PATHS.binary,
                HTTPS_PORT: p.httpsPort,
                DEAD_NODES: [...p.deadNodes].sort().join(" "),
                WAIT_SECONDS: p.waitSeconds,
            }) +
            COMMON +
            PRUNE_BODY,
    );
}
