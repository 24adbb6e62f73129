# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The apply script's body (components/vm/scripts.ts applyScript; common.sh runs first): installs
# Consul, stages and validates the file bundle from stdin, swaps it in, restarts or reloads, waits.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from applyScript's params: NODE ROLE VERSION INSTALL_MODE MIRROR RELEASE_KEYRING (empty unless
#   INSTALL_MODE is download) RELEASE_KEY_FINGERPRINT HTTPS_PORT SERVER_COUNT IS_LAST_SERVER (1/0)
#   SERVER_API_URLS and UPDATED_SERVERS (space-separated, may be empty) WAIT_SECONDS ACL_BOOTSTRAP
#   (1/0; 0 in a federation secondary, whose ACLs come by replication) BUNDLE_SHA256;
#   from PATHS: BIN CONFIG_DIR TLS_DIR CLI_DIR TOKEN_DIR DATA_DIR MAIN JOIN SECRET GOSSIP CA_FILE
#   AGENT_CA MANAGEMENT_TOKEN AGENT_TOKEN PROFILE UNIT_FILE OWNER_FILE USER_MARKER BACKUP WORK_PARENT
#   STAGE_PARENT LAN_KEYRING WAN_KEYRING; and the snapshot files (servers with snapshots on, see the
#   end): SNAPSHOT_TOKEN SNAPSHOT_RCLONE SNAPSHOT_BIN SNAPSHOT_SERVICE SNAPSHOT_TIMER SNAPSHOT_DIR;
#   DNS (see the end): DNS_TOKEN RESOLVED_DROPIN RESOLV_CONF NSSWITCH_CONF.
readonly NODE ROLE VERSION INSTALL_MODE MIRROR RELEASE_KEYRING RELEASE_KEY_FINGERPRINT HTTPS_PORT \
    SERVER_COUNT IS_LAST_SERVER SERVER_API_URLS UPDATED_SERVERS WAIT_SECONDS ACL_BOOTSTRAP BUNDLE_SHA256
readonly BIN CONFIG_DIR TLS_DIR CLI_DIR TOKEN_DIR DATA_DIR MAIN JOIN SECRET GOSSIP CA_FILE AGENT_CA \
    MANAGEMENT_TOKEN AGENT_TOKEN PROFILE UNIT_FILE OWNER_FILE USER_MARKER BACKUP WORK_PARENT \
    STAGE_PARENT LAN_KEYRING WAN_KEYRING
readonly SNAPSHOT_TOKEN SNAPSHOT_RCLONE SNAPSHOT_BIN SNAPSHOT_SERVICE SNAPSHOT_TIMER SNAPSHOT_DIR
readonly DNS_TOKEN RESOLVED_DROPIN RESOLV_CONF NSSWITCH_CONF
# Set first by common.sh and read there: STEP (named by say and fail), WORK and STAGE (removed on
# exit). Read here too, so that shellcheck, which checks this file alone, sees them used.
: "${STEP?}" "${WORK?}" "${STAGE?}"
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
            "https://127.0.0.1:$HTTPS_PORT/v1/operator/raft/transfer-leader${1:+?id=$1}" 2>&1
}

STEP=preflight
require_root
require_tools systemctl base64 sha256sum install cmp stat curl awk
if [ "$INSTALL_MODE" = download ]; then require_tools gpgv; fi
remove_stale_work
WORK=$(mktemp -d "$WORK_PARENT/consul-pulumi.XXXXXX") || fail "cannot create a temporary directory"
cat > "$WORK/bundle"
got=$(sha256sum < "$WORK/bundle" | cut -d ' ' -f 1)
if [ "$got" != "$BUNDLE_SHA256" ]; then
    fail "the file bundle on stdin does not match its digest; re-run pulumi up"
fi
# Snapshots upload with rclone: refuse before anything changes if the host lacks it.
if grep -q -F "$SNAPSHOT_TIMER " "$WORK/bundle"; then require_tools rclone; fi
# The DNS forwarder is a systemd-resolved drop-in: refuse, before anything changes, a host where
# systemd-resolved would not see the lookups (programs must reach it through its stub or nss-resolve).
if grep -q -F "$RESOLVED_DROPIN " "$WORK/bundle"; then
    if ! systemctl is-active --quiet systemd-resolved.service; then
        fail "dnsForwarder is systemd-resolved, but systemd-resolved is not running on $NODE: install and enable it (apt-get install systemd-resolved), or set dnsForwarder to none; nothing was changed"
    fi
    if ! grep -q '^nameserver 127\.0\.0\.53' "$RESOLV_CONF" && ! grep -q '^hosts:.*resolve' "$NSSWITCH_CONF"; then
        fail "dnsForwarder is systemd-resolved, but $RESOLV_CONF on $NODE does not use its stub (nameserver 127.0.0.53) and $NSSWITCH_CONF has no resolve module, so lookups would never reach it: ln -sf /run/systemd/resolve/stub-resolv.conf $RESOLV_CONF, or set dnsForwarder to none; nothing was changed"
    fi
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
    useradd --system --gid consul --home-dir "$DATA_DIR" --no-create-home --shell /bin/false consul ||
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
    zip="consul_${VERSION}_linux_${ARCH}.zip"
    base="$MIRROR/consul/$VERSION"
    if ! curl -fsSL --retry 3 --max-time 600 -o "$WORK/$zip" "$base/$zip"; then
        fail "could not download $base/$zip; check releaseMirrorUrl and the host's access to it"
    fi
    if ! curl -fsSL --retry 3 --max-time 60 -o "$WORK/SHA256SUMS" "$base/consul_${VERSION}_SHA256SUMS"; then
        fail "could not download $base/consul_${VERSION}_SHA256SUMS; check releaseMirrorUrl"
    fi
    if ! curl -fsSL --retry 3 --max-time 60 -o "$WORK/SHA256SUMS.sig" "$base/consul_${VERSION}_SHA256SUMS.sig"; then
        fail "could not download $base/consul_${VERSION}_SHA256SUMS.sig; a mirror must serve HashiCorp's signature with the release"
    fi
    # The hashes count only once the list is proven to be signed by the release key.
    printf '%s' "$RELEASE_KEYRING" | base64 -d > "$WORK/release-key.gpg" || fail "cannot decode the release key"
    if ! gpgv --homedir "$WORK" --keyring "$WORK/release-key.gpg" "$WORK/SHA256SUMS.sig" "$WORK/SHA256SUMS" > "$WORK/gpgv.out" 2>&1; then
        fail "consul_${VERSION}_SHA256SUMS is not signed by the release key $RELEASE_KEY_FINGERPRINT ($(grep -m 1 -E 'BAD signature|[Nn]o public key|Can.t check|invalid' "$WORK/gpgv.out" || tail -n 1 "$WORK/gpgv.out")): the mirror serves files that key did not sign; nothing was installed"
    fi
    want=$(awk -v f="$zip" '$2 == f { print $1 }' "$WORK/SHA256SUMS")
    if [ -z "$want" ]; then
        fail "$zip is not listed in consul_${VERSION}_SHA256SUMS; check consulVersion and the mirror"
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
CONSUL=${NEW_BIN:-$BIN}

STEP=layout
# Searchable by all, listable by none: the files readable by all (certificates, the CA bundles apps
# and Prometheus verify agents with) are then readable; every secret has a mode of its own.
install -d -m 0751 -o root -g consul "$CONFIG_DIR" "$TLS_DIR"
install -d -m 0700 -o root -g root "$CLI_DIR" "$TOKEN_DIR"
install -d -m 0700 -o consul -g consul "$DATA_DIR"
if grep -q -F "$RESOLVED_DROPIN " "$WORK/bundle"; then install -d -m 0755 "$(dirname "$RESOLVED_DROPIN")"; fi
# Only a user this program created is deleted again when the node is removed.
if [ "$created_user" -eq 1 ]; then : > "$USER_MARKER"; fi
say "ok"

STEP=stage
STAGE=$(mktemp -d "$STAGE_PARENT/.consul-stage.XXXXXX") || fail "cannot create a staging directory under $STAGE_PARENT"
: > "$WORK/files"
while IFS=' ' read -r path mode owner group data; do
    if [ -z "$path" ]; then continue; fi
    case "$path" in
        *..*) fail "refusing to write $path" ;;
        "$MAIN" | "$JOIN" | "$SECRET" | "$GOSSIP" | "$TLS_DIR"/*.pem) ;;
        "$CLI_DIR"/*.pem | "$MANAGEMENT_TOKEN" | "$AGENT_TOKEN") ;;
        "$PROFILE" | "$UNIT_FILE" | "$OWNER_FILE") ;;
        "$SNAPSHOT_TOKEN" | "$SNAPSHOT_RCLONE" | "$SNAPSHOT_BIN" | "$SNAPSHOT_SERVICE" | "$SNAPSHOT_TIMER") ;;
        "$DNS_TOKEN" | "$RESOLVED_DROPIN") ;;
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
for f in "$MAIN" "$JOIN" "$SECRET" "$GOSSIP" "$UNIT_FILE"; do
    if [ ! -s "$STAGE$f" ]; then fail "$f is missing from the bundle"; fi
done
while read -r path; do
    case "$path" in
        *-key.pem) grep -q -e '-----BEGIN .*PRIVATE KEY-----' "$STAGE$path" || fail "$path is not a PEM private key" ;;
        *.pem) grep -q -e '-----BEGIN CERTIFICATE-----' "$STAGE$path" || fail "$path is not a PEM certificate" ;;
    esac
done < "$WORK/files"
if ! out=$("$CONSUL" validate "$STAGE$MAIN" "$STAGE$JOIN" "$STAGE$SECRET" "$STAGE$GOSSIP" 2>&1); then
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
        "$JOIN" | "$TLS_DIR"/*) if [ "$ACTION" = none ]; then ACTION=reload; fi ;;
    esac
done < "$WORK/changed"
if [ "$active" -eq 0 ]; then ACTION=restart; fi
# A new key in $GOSSIP needs no restart: Consul reads encrypt only while the data dir has no
# keyring, and the keyring steps around the rollout (keyring.sh) install the key everywhere, then
# make it the only one. A keyring they did not reach (the agent was down) lacks it: it is put
# first there, and the agent restarted to load it. The key is compared by the shell alone, so it
# is never in a process's arguments.
gossip_key=$(sed -n 's/^ *"encrypt"[: ]*"\([A-Za-z0-9+/=]*\)"$/\1/p' "$STAGE$GOSSIP")
if [ -z "$gossip_key" ]; then fail "$GOSSIP in the bundle holds no gossip key"; fi
: > "$WORK/rings"
rings=$LAN_KEYRING
if [ "$ROLE" = server ]; then rings="$LAN_KEYRING $WAN_KEYRING"; fi
for ring in $rings; do
    if [ -f "$ring" ]; then
        case "$(cat "$ring")" in
            *"\"$gossip_key\""*) ;;
            *) printf '%s\n' "$ring" >> "$WORK/rings" ;;
        esac
    fi
done
if [ -s "$WORK/rings" ]; then
    ACTION=restart
    say "the persisted keyring lacks the configured gossip key: it becomes the primary key, and the agent restarts"
fi
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
            *" updated") say "this node is the Raft leader, transferring leadership to ${target% *} (already updated)" ;;
            *" other") say "this node is the Raft leader, transferring leadership to ${target% *} (none updated yet)" ;;
            *) say "this node is the Raft leader, transferring leadership" ;;
        esac
        target=${target% *}
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
# The old keys stay after the new one: they still decrypt members that have not switched yet.
while read -r ring; do
    others=$(tr -d '[]\n ' < "$ring")
    { printf '["%s"' "$gossip_key"; if [ -n "$others" ]; then printf ',%s' "$others"; fi; printf ']\n'; } > "$ring.new"
    if ! { chown consul:consul "$ring.new" && chmod 0600 "$ring.new" && mv -f "$ring.new" "$ring"; }; then
        restore || :
        fail "could not add the gossip key to $ring; previous files restored"
    fi
done < "$WORK/rings"

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
# is in no agent config, so only root on the servers holds it. A federation secondary never
# bootstraps: its token file holds the replication token, which works once the primary is reached.
acl_ready() {
    tf=$(token_file)
    if [ -z "$tf" ] || api /v1/acl/token/self "$tf" >/dev/null; then return 0; fi
    if [ "$ACL_BOOTSTRAP" -eq 0 ]; then
        waiting_for="the replication token to work (the primary datacenter's servers reached over WAN, ports 8300 and 8302)"
        return 1
    fi
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

# Snapshots (servers with snapshotInterval set): the timer runs once the agent is healthy, restarted
# when its schedule changed. A bundle without it (snapshots turned off) removes what an earlier
# deploy installed; local snapshots stay in $SNAPSHOT_DIR for the operator.
STEP=snapshots
timer=${SNAPSHOT_TIMER##*/}
if grep -q -x -F "$SNAPSHOT_TIMER" "$WORK/files"; then
    if grep -q -x -F -e "$SNAPSHOT_TIMER" -e "$SNAPSHOT_SERVICE" "$WORK/changed"; then
        { systemctl enable --quiet "$timer" && systemctl restart "$timer"; } || fail "could not start $timer"
        say "$timer started"
    else
        systemctl enable --quiet --now "$timer" || fail "could not start $timer"
    fi
elif [ -e "$SNAPSHOT_TIMER" ]; then
    systemctl disable --quiet --now "$timer" || :
    rm -f "$SNAPSHOT_TIMER" "$SNAPSHOT_SERVICE" "$SNAPSHOT_BIN" "$SNAPSHOT_RCLONE" "$SNAPSHOT_TOKEN"
    systemctl daemon-reload
    say "snapshots off: $timer and its files removed (local snapshots kept in $SNAPSHOT_DIR)"
fi

# DNS: the clients' systemd-resolved drop-in (dnsForwarder). systemd-resolved reads drop-ins when it
# starts, so it is restarted when the drop-in is newer than its start (also after a run that stopped
# between the swap and here); consul is never restarted for it. A bundle without the drop-in, or
# without the servers' DNS token file (dnsDefaultToken off), removes what an earlier deploy wrote.
STEP=dns
if grep -q -x -F "$RESOLVED_DROPIN" "$WORK/files"; then
    started=$(systemctl show -p ExecMainStartTimestamp --value systemd-resolved.service)
    if [ -z "$started" ] || [ "$(stat -c %Y "$RESOLVED_DROPIN")" -ge "$(date -d "$started" +%s)" ]; then
        systemctl restart systemd-resolved.service || fail "could not restart systemd-resolved for $RESOLVED_DROPIN"
        say "systemd-resolved restarted: $RESOLVED_DROPIN routes the Consul domain to this agent"
    fi
elif [ -e "$RESOLVED_DROPIN" ]; then
    rm -f "$RESOLVED_DROPIN"
    systemctl try-restart systemd-resolved.service || :
    say "dnsForwarder off: $RESOLVED_DROPIN removed"
fi
if [ -e "$DNS_TOKEN" ] && ! grep -q -x -F "$DNS_TOKEN" "$WORK/files"; then
    rm -f "$DNS_TOKEN"
    say "dnsDefaultToken off: $DNS_TOKEN removed"
fi
