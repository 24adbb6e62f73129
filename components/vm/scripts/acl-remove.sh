# shellcheck shell=sh
# shellcheck enable=check-unassigned-uppercase
# The app token's delete script (components/vm/app-tokens.ts appTokenRemoveScript; common.sh runs
# first), on the ACL step's server when an app leaves consul:appTokens (or the stack is destroyed):
# deletes the token by its fixed AccessorID, then the app's policy. Each is skipped if gone.
#
# Parameters, set read-only by the header (see common.sh; these are the ones this file reads):
#   NODE HTTPS_PORT POLICY_NAME TOKEN_NAME ACCESSOR_ID WAIT_SECONDS; from PATHS: CA_FILE.
readonly NODE HTTPS_PORT POLICY_NAME TOKEN_NAME ACCESSOR_ID WAIT_SECONDS
readonly CA_FILE
# Set first by common.sh and read there: STEP (named by say and fail).
: "${STEP?}"
STEP=acl-remove
require_root
require_tools curl
deadline=$(($(now) + WAIT_SECONDS))
until [ -n "$(leader "$CA_FILE")" ] && api /v1/acl/token/self "$(token_file)" >/dev/null; do
    if [ "$(now)" -ge "$deadline" ]; then
        fail "timed out after ${WAIT_SECONDS}s waiting for a leader and a working management token; see journalctl -u consul on $NODE"
    fi
    sleep 2
done
# delete PATH WHAT: DELETE on the local agent with the management token (on curl's stdin).
delete() {
    { printf 'header = "X-Consul-Token: '; tr -d '\n' < "$(token_file)"; printf '"\n'; } |
        curl -sS -f --max-time 10 --cacert "$CA_FILE" --config - -X DELETE \
            "https://127.0.0.1:$HTTPS_PORT$1" >/dev/null 2>&1 || fail "could not delete $2"
    say "$2 deleted"
}
if api "/v1/acl/token/$ACCESSOR_ID" "$(token_file)" >/dev/null; then
    delete "/v1/acl/token/$ACCESSOR_ID" "the $TOKEN_NAME token"
else
    say "the $TOKEN_NAME token is already gone"
fi
policy_id=$(api "/v1/acl/policy/name/$POLICY_NAME" "$(token_file)" | tr ',' '\n' |
    sed -n 's/^{*"ID":"\([^"]*\)"$/\1/p' | head -n 1) || policy_id=""
if [ -n "$policy_id" ]; then
    delete "/v1/acl/policy/$policy_id" "policy $POLICY_NAME"
else
    say "policy $POLICY_NAME is already gone"
fi
