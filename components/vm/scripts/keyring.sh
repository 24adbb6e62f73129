# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The keyring script's body (components/vm/scripts.ts keyringScript; common.sh runs first), on the
# first live server. It runs Consul's keyring protocol through the HTTP API, with the key from
# stdin, so the key is never in a process's arguments and never printed:
#   PHASE=install, before the rollout: the key joins every live member's keyring (a new cluster,
#     where no server answers yet, starts with it from the config instead);
#   PHASE=finish, after it: the key becomes every member's primary key, every other key is
#     removed, and every member must then hold exactly that one.
# Both are safe to re-run, so an interrupted rotation is finished by the next pulumi up.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from keyringScript's params: NODE PHASE HTTPS_PORT SERVER_API_URLS (space-separated)
#   KEY_SHA256 WAIT_SECONDS;
#   from PATHS: CA_FILE WORK_PARENT (and MANAGEMENT_TOKEN, through common.sh's token_file).
readonly NODE PHASE HTTPS_PORT SERVER_API_URLS KEY_SHA256 WAIT_SECONDS
readonly CA_FILE WORK_PARENT
# Set first by common.sh and read there: STEP (named by say and fail), WORK (removed on exit).
# Read here too, so that shellcheck, which checks this file alone, sees them used.
: "${STEP?}" "${WORK?}"
STEP="keyring-$PHASE"
require_root
require_tools curl sha256sum
WORK=$(mktemp -d "$WORK_PARENT/consul-pulumi.XXXXXX") || fail "cannot create a temporary directory"
cat > "$WORK/key"
if [ "$(sha256sum < "$WORK/key" | cut -d ' ' -f 1)" != "$KEY_SHA256" ]; then
    fail "the gossip key on stdin does not match its digest; re-run pulumi up"
fi
key=$(cat "$WORK/key")
printf '{"Key":"%s"}' "$key" > "$WORK/key.json"

# The first server that answers over TLS with our CA: this host's agent, then the others.
BASE=""
find_server() {
    for url in "https://127.0.0.1:$HTTPS_PORT" $SERVER_API_URLS; do
        if [ -f "$CA_FILE" ] && curl -sS -f --max-time 5 --cacert "$CA_FILE" "$url/v1/status/leader" 2>/dev/null |
            grep -q '^"..*"$'; then
            BASE=$url
            return 0
        fi
    done
    return 1
}

# The X-Consul-Token header for curl's --config - (nothing without ACLs).
token_config() {
    if [ -n "$(token_file)" ]; then
        printf 'header = "X-Consul-Token: '
        tr -d '\n' < "$(token_file)"
        printf '"\n'
    fi
}

# call METHOD [BODY_FILE]: the keyring endpoint, with the new key as the body unless another file
# is given (GET: none); the response goes to $WORK/response. Returns 0 on HTTP 200.
call() {
    if [ "$1" = GET ]; then
        code=$(token_config | curl -sS --max-time 60 --cacert "$CA_FILE" --config - \
            -o "$WORK/response" -w '%{http_code}' "$BASE/v1/operator/keyring" 2> "$WORK/curl.err") || code=000
    else
        code=$(token_config | curl -sS --max-time 60 --cacert "$CA_FILE" --config - -X "$1" \
            --data-binary "@${2:-$WORK/key.json}" -o "$WORK/response" -w '%{http_code}' \
            "$BASE/v1/operator/keyring" 2> "$WORK/curl.err") || code=000
    fi
    [ "$code" = 200 ]
}

# What a failed call said, with anything shaped like a gossip key blotted out.
response() {
    cat "$WORK/response" "$WORK/curl.err" 2>/dev/null | tr '\n' ' ' | cut -c 1-300 |
        sed 's#[A-Za-z0-9+/]\{43\}=#<a gossip key>#g'
}

# ring: one line per key and pool in $WORK/ring, "<pool> <members> <key> <holders> <primary-holders>",
# from Consul's answer ([{"WAN":…,"Keys":{…},"PrimaryKeys":{…},"NumNodes":N},…]). Keys are base64,
# so they hold no quote, comma or brace. The file stays in WORK (mode 0600 by umask); no key is printed.
# Returns 1 when Consul cannot list them: it answers 500 unless every member of every pool responds.
ring() {
    call GET || return 1
    tr -d '\n' < "$WORK/response" | awk '
        function field(text, name,    rest) {
            if (!match(text, "\"" name "\":\\{[^}]*\\}")) return ""
            rest = substr(text, RSTART + length(name) + 4, RLENGTH - length(name) - 5)
            return rest
        }
        {
            n = split($0, pools, /\{"WAN":/)
            for (i = 2; i <= n; i++) {
                p = pools[i]
                pool = substr(p, 1, 4) == "true" ? "WAN" : "LAN"
                members = p
                sub(/.*"NumNodes":/, "", members)
                sub(/[^0-9].*/, "", members)
                delete primary
                m = split(field(p, "PrimaryKeys"), entries, ",")
                for (j = 1; j <= m; j++) {
                    split(entries[j], kv, "\":")
                    primary[substr(kv[1], 2)] = kv[2]
                }
                m = split(field(p, "Keys"), entries, ",")
                for (j = 1; j <= m; j++) {
                    split(entries[j], kv, "\":")
                    k = substr(kv[1], 2)
                    print pool, members, k, kv[2], (k in primary ? primary[k] : 0)
                }
            }
        }' > "$WORK/ring"
    if [ ! -s "$WORK/ring" ]; then fail "the keyring list through $BASE was not understood: $(response)"; fi
}

# ring_retried WHEN: ring, asked again every 2 s until the deadline while a member does not answer
# (one just restarted, or the keyring query timed out on a busy member); then fails, saying WHEN.
ring_retried() {
    until ring; do
        if [ "$(now)" -ge "$deadline" ]; then
            fail "could not list every member's keys through $BASE $1 (HTTP $code): $(response); check consul members, then re-run pulumi up"
        fi
        sleep 2
    done
}

# call_retried WHAT METHOD [BODY_FILE]: call, asked again every 2 s until the deadline while a member
# does not answer (Consul's "k/n nodes reported success": one just joined, restarted or reloaded,
# as in a scale-up's rollout); the keyring's POST, PUT and DELETE are idempotent. Any other answer,
# or the deadline, fails, saying the step could not WHAT.
call_retried() {
    what=$1
    shift
    until call "$@"; do
        if ! grep -q 'nodes reported success' "$WORK/response" 2>/dev/null || [ "$(now)" -ge "$deadline" ]; then
            fail "consul could not $what through $BASE (HTTP $code): $(response)"
        fi
        sleep 2
    done
}

# holds_everywhere: 0 if every pool lists the new key on all its members; else says where not.
holds_everywhere() {
    short=""
    for pool in LAN WAN; do
        found=0
        while read -r p members k holders _; do
            if [ "$p" = "$pool" ] && [ "$k" = "$key" ]; then
                found=1
                if [ "$holders" -ne "$members" ]; then short="$short $pool: $holders of $members members;"; fi
            fi
        done < "$WORK/ring"
        if [ "$found" -eq 0 ] && grep -q "^$pool " "$WORK/ring"; then short="$short $pool: no member;"; fi
    done
    [ -z "$short" ]
}

# summary: "<pool> <members> members" for each pool, for the progress lines.
summary() {
    awk '{ n[$1] = $2 }
        END { if ("LAN" in n) s = "LAN " n["LAN"] " members"; if ("WAN" in n) s = s (s == "" ? "" : ", ") "WAN " n["WAN"] " members"; print s }' "$WORK/ring"
}

deadline=$(($(now) + WAIT_SECONDS))
if [ "$PHASE" = install ]; then
    if ! find_server; then
        # Nothing answers: a new cluster, whose agents take the key from their config. A server
        # that listens but is not ours (or has no leader) is a cluster this step cannot reach.
        # curl: 6, could not resolve; 7, could not connect; 28, timed out. Anything else answered.
        for url in "https://127.0.0.1:$HTTPS_PORT" $SERVER_API_URLS; do
            rc=0
            curl -s --max-time 5 -o /dev/null "$url/v1/status/leader" 2>/dev/null || rc=$?
            case "$rc" in
                6 | 7 | 28) ;;
                *) fail "$url answers, but not with a leader and our CA, so the new gossip key cannot be installed; bring the cluster back to health, then re-run pulumi up" ;;
            esac
        done
        say "no Consul server answers yet: a new cluster, which starts with this key"
        exit 0
    fi
    if ring && holds_everywhere; then
        say "every member already holds the gossip key ($(summary))"
        exit 0
    fi
    if call POST; then
        ring_retried "after the install"
        holds_everywhere || fail "the new gossip key did not reach every member:$short check consul members, then re-run pulumi up"
        say "new gossip key installed on every member ($(summary)); the old one stays primary until the rollout is done"
    elif grep -q 'nodes reported success' "$WORK/response"; then
        # A member that is down now: its own step puts the key first in its keyring before it starts
        # it, and keyring-finish refuses to go on unless every member then holds the key.
        say "new gossip key installed on the members that answered ($(response)); the others get it in their own step"
    else
        fail "consul could not install the new gossip key through $BASE (HTTP $code): $(response)"
    fi
    exit 0
fi

until find_server; do
    if [ "$(now)" -ge "$deadline" ]; then
        fail "timed out after ${WAIT_SECONDS}s waiting for a server with a leader; see journalctl -u consul on $NODE"
    fi
    sleep 2
done
ring_retried "before making the key primary"
if ! holds_everywhere; then
    # A member the install step missed (it was down, or joined from an old keyring): install again.
    call_retried "install the gossip key" POST
    ring_retried "after installing it again"
    holds_everywhere || fail "the gossip key is not on every member:$short check consul members, then re-run pulumi up"
fi
call_retried "make the new gossip key primary" PUT
# Every other key goes (each is listed once per pool; one DELETE removes it from all of them).
removed=0
done_keys=" "
while read -r _ _ k _ _; do
    case "$done_keys" in *" $k "*) continue ;; esac
    done_keys="$done_keys$k "
    if [ "$k" != "$key" ]; then
        printf '{"Key":"%s"}' "$k" > "$WORK/old.json"
        call_retried "remove an old gossip key" DELETE "$WORK/old.json"
        removed=$((removed + 1))
    fi
done < "$WORK/ring"
ring_retried "after the removal"
bad=$(while read -r p members k holders primary; do
    if [ "$k" != "$key" ]; then
        printf ' %s: an old key on %s members;' "$p" "$holders"
    elif [ "$holders" -ne "$members" ] || [ "$primary" -ne "$members" ]; then
        printf ' %s: the key on %s and primary on %s of %s members;' "$p" "$holders" "$primary" "$members"
    fi
done < "$WORK/ring")
if [ -n "$bad" ]; then fail "the keyring did not settle on the one key:$bad re-run pulumi up"; fi
say "one gossip key, primary on every member ($(summary)); $removed old key(s) removed"
