# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The ACL script's body (components/vm/acl-steps.ts aclScript; common.sh runs first): upserts a
# policy (the agent's, the snapshot, DNS or metrics token's, or an app's) and creates its token with
# the SecretID from the host's token file, or from stdin when TOKEN_FILE is empty (the metrics token
# and app tokens, which no Consul host keeps).
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   from aclScript's params: NODE HTTPS_PORT POLICY_NAME POLICY_JSON TOKEN_NAME (agent, snapshot,
#   dns, metrics, or the app's name) TOKEN_DESCRIPTION WAIT_SECONDS ACCESSOR_ID (an app token's fixed
#   AccessorID, empty for the others); from PATHS: CA_FILE TOKEN_FILE (that token's file, or empty:
#   the SecretID is on stdin) WORK_PARENT.
readonly NODE HTTPS_PORT POLICY_NAME POLICY_JSON TOKEN_NAME TOKEN_DESCRIPTION WAIT_SECONDS ACCESSOR_ID
readonly CA_FILE TOKEN_FILE WORK_PARENT
# Set first by common.sh and read there: STEP (named by say and fail), WORK (removed on exit).
# Read here too, so that shellcheck, which checks this file alone, sees them used.
: "${STEP?}" "${WORK?}"
STEP=acl
require_root
require_tools curl
WORK=$(mktemp -d "$WORK_PARENT/consul-pulumi.XXXXXX") || fail "cannot create a temporary directory"
deadline=$(($(now) + WAIT_SECONDS))
secret_file=$TOKEN_FILE
if [ -z "$TOKEN_FILE" ]; then
    # In the work directory (0700, removed on exit); never on argv.
    secret_file="$WORK/secret"
    tr -d '\n' > "$secret_file"
    grep -Eqx '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}' "$secret_file" ||
        fail "stdin does not hold a token SecretID (a UUID)"
fi
# The last server's step bootstrapped the ACL system with the management token; wait until it works.
until [ -n "$(leader "$CA_FILE")" ] && api /v1/acl/token/self "$(token_file)" >/dev/null; do
    if [ "$(now)" -ge "$deadline" ]; then
        fail "timed out after ${WAIT_SECONDS}s waiting for a leader and a working management token; see journalctl -u consul on $NODE"
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
if api /v1/acl/token/self "$secret_file" >/dev/null; then
    say "$TOKEN_NAME token exists"
else
    accessor=""
    if [ -n "$ACCESSOR_ID" ]; then
        # A new SecretID for a token that exists (a rotation): the old one stops working here.
        if api "/v1/acl/token/$ACCESSOR_ID" "$(token_file)" >/dev/null; then
            { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
                curl -sS -f --max-time 10 --cacert "$CA_FILE" --config - -X DELETE \
                    "https://127.0.0.1:$HTTPS_PORT/v1/acl/token/$ACCESSOR_ID" >/dev/null 2>&1 ||
                fail "could not delete the previous $TOKEN_NAME token"
            say "previous $TOKEN_NAME token deleted"
        fi
        accessor="\"AccessorID\":\"$ACCESSOR_ID\","
    fi
    printf '{%s"SecretID":"%s","Description":"%s","Policies":[{"Name":"%s"}]}' \
        "$accessor" "$(tr -d '\n' < "$secret_file")" "$TOKEN_DESCRIPTION" "$POLICY_NAME" > "$WORK/token.json"
    { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
        curl -sS -f --max-time 10 --cacert "$CA_FILE" --config - -X PUT --data-binary "@$WORK/token.json" \
            "https://127.0.0.1:$HTTPS_PORT/v1/acl/token" >/dev/null 2>&1 ||
        fail "could not create the $TOKEN_NAME token"
    say "$TOKEN_NAME token created"
fi
