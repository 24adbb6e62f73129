// Small POSIX shell scripts that Kubernetes containers run, as pure functions so tests can read
// them and run shellcheck on them. Every value put into a script is quoted with `shellQuote`;
// nothing secret is ever put into a script: secrets are read from mounted files at run time.

import { shellQuote } from "../shell";

function port(value: number): string {
    if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`not a TCP port: ${value}`);
    return String(value);
}

/**
 * Readiness: the agent knows a leader. `/v1/status/leader` answers `""` while there is none, and
 * needs no ACL token. Over HTTPS to 127.0.0.1, verified with our CA (the certificates carry IP SAN
 * 127.0.0.1), rather than the Helm chart's `curl -k`. The hashicorp/consul image ships curl.
 */
export function leaderProbeScript(httpsPort: number, caFile: string): string {
    return [
        `curl -sS --max-time 4 --cacert ${shellQuote(caFile)} https://127.0.0.1:${port(httpsPort)}/v1/status/leader \\`,
        `    | grep -qE '^"[^"]+"$'`,
        "",
    ].join("\n");
}

export interface ClientStartOptions {
    /** Main (non-secret) config and secret fragment, in load order. */
    readonly configFiles: readonly string[];
    /** Where the generated address config goes (an emptyDir). */
    readonly addressConfigFile: string;
    /** The hostPath data dir, which the init container handed to the consul user. */
    readonly dataDir: string;
    /** The secret config fragment, whose `encrypt` is the gossip key. */
    readonly secretConfigFile: string;
}

/**
 * The client's root init container: hand the hostPath data dir (created root:root 0755 by the
 * kubelet; fsGroup does not apply to hostPath volumes) to the consul user. CAP_CHOWN is all chown
 * needs; the mode is set by the agent's own start script as the dir's owner, so no FOWNER.
 */
export function dataDirOwnerScript(dataDir: string, uid: number, gid: number): string {
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0) {
        throw new Error(`not a uid:gid: ${uid}:${gid}`);
    }
    return `chown ${uid}:${gid} ${shellQuote(dataDir)}\n`;
}

/**
 * The client agent's entrypoint. Consul config files cannot read environment variables, so (as
 * the Helm chart does) the addresses the kubelet hands the pod are written into a small extra
 * config file (auto_encrypt IP SANs) before exec'ing the agent, after closing the data dir to
 * others (see dataDirOwnerScript). Node name and advertise address
 * are plain flags. Nothing secret passes through the environment or the command line.
 */
export function clientStartScript(options: ClientStartOptions): string {
    const files = [...options.configFiles, options.addressConfigFile].map(
        (f) => `    -config-file=${shellQuote(f)} \\`,
    );
    return [
        "set -eu",
        // The data dir (node ID, the agent's state) is the consul user's alone; it owns it now.
        `chmod 0700 ${shellQuote(options.dataDir)}`,
        'for ip in "$HOST_IP" "$POD_IP"; do',
        '    case "$ip" in',
        "        '' | *[!0-9A-Fa-f.:]*)",
        "            echo \"not an IP address: '$ip'\" >&2",
        "            exit 1",
        "            ;;",
        "    esac",
        "done",
        'sans="\\"$HOST_IP\\""',
        'if [ "$POD_IP" != "$HOST_IP" ]; then',
        '    sans="$sans,\\"$POD_IP\\""',
        "fi",
        `printf '{"auto_encrypt":{"ip_san":[%s]}}\\n' "$sans" >${shellQuote(options.addressConfigFile)}`,
        // The data dir outlives the DaemonSet (a destroy and a new install on the same node): its
        // persisted keyring, which Consul loads instead of `encrypt`, may lack this install's key,
        // and the agent could join no one. The configured key goes first (the primary), the others
        // stay (a rotation's). jq reads the key from the file: it is in no argument and not printed.
        `keyring=${shellQuote(`${options.dataDir}/serf/local.keyring`)}`,
        'if [ -f "$keyring" ]; then',
        "    umask 077",
        "    # shellcheck disable=SC2016 # $k is jq's",
        `    jq -s '.[0].encrypt as $k | if ($k == null) or (.[1] | index($k)) then empty else [$k] + .[1] end' ${shellQuote(options.secretConfigFile)} "$keyring" >"$keyring.new"`,
        '    if [ -s "$keyring.new" ]; then',
        '        mv "$keyring.new" "$keyring"',
        '        echo "the persisted gossip keyring lacked the configured key: it is now the primary key" >&2',
        "    else",
        '        rm -f "$keyring.new"',
        "    fi",
        "fi",
        "exec consul agent \\",
        ...files,
        '    -node="$NODE_NAME" \\',
        '    -advertise="$HOST_IP" \\',
        "    -bind=0.0.0.0",
        "",
    ].join("\n");
}

export interface AclAgentTokenScriptOptions {
    readonly caFile: string;
    /** File with the header line `X-Consul-Token: <management token>` (a mounted Secret). */
    readonly managementHeaderFile: string;
    /** File with the header line `X-Consul-Token: <agent token>` (same Secret). */
    readonly agentHeaderFile: string;
    /** JSON body of PUT /v1/acl/policy (a ConfigMap: policies are not secret). */
    readonly policyFile: string;
    readonly policyName: string;
    /** JSON body of PUT /v1/acl/token, carrying the fixed SecretID (the Secret). */
    readonly tokenFile: string;
    readonly maxAttempts: number;
}

/**
 * Creates or updates the agent policy, then creates the agent token (with the SecretID the agents
 * are already configured with) unless it exists: re-running the Job, a second Job, or the VM side
 * having done it first are all harmless. Needs curl and jq (both in the hashicorp/consul image). Server addresses come in
 * $CONSUL_ADDRS (space separated https://host:port, not secret); tokens only from files.
 */
export function aclAgentTokenScript(o: AclAgentTokenScriptOptions): string {
    const q = shellQuote;
    return [
        "set -eu",
        "api() {",
        `    curl -sS --fail --max-time 10 --cacert ${q(o.caFile)} "$@"`,
        "}",
        'leader=""',
        "attempt=0",
        'while [ -z "$leader" ]; do',
        "    for addr in $CONSUL_ADDRS; do",
        '        if api "$addr/v1/status/leader" 2>/dev/null | grep -qE \'^"[^"]+"$\'; then',
        '            leader="$addr"',
        "            break",
        "        fi",
        "    done",
        '    if [ -z "$leader" ]; then',
        "        attempt=$((attempt + 1))",
        `        if [ "$attempt" -ge ${String(Math.max(1, Math.floor(o.maxAttempts)))} ]; then`,
        '            echo "no Consul leader at $CONSUL_ADDRS; giving up" >&2',
        "            exit 1",
        "        fi",
        "        sleep 5",
        "    fi",
        "done",
        'echo "leader found via $leader"',
        // The policy is upserted on every run, so a changed policy reaches an existing token.
        `policy_id=$(api -H @${q(o.managementHeaderFile)} "$leader/v1/acl/policy/name/"${q(o.policyName)} 2>/dev/null | jq -r '.ID // empty' || true)`,
        'if [ -n "$policy_id" ]; then',
        `    api -o /dev/null -X PUT -H @${q(o.managementHeaderFile)} --data-binary @${q(o.policyFile)} "$leader/v1/acl/policy/$policy_id"`,
        `    echo "updated policy "${q(o.policyName)}`,
        "else",
        `    api -o /dev/null -X PUT -H @${q(o.managementHeaderFile)} --data-binary @${q(o.policyFile)} "$leader/v1/acl/policy"`,
        `    echo "created policy "${q(o.policyName)}`,
        "fi",
        `if api -o /dev/null -H @${q(o.agentHeaderFile)} "$leader/v1/acl/token/self" 2>/dev/null; then`,
        '    echo "the agent token exists already"',
        "    exit 0",
        "fi",
        `api -o /dev/null -X PUT -H @${q(o.managementHeaderFile)} --data-binary @${q(o.tokenFile)} "$leader/v1/acl/token"`,
        'echo "created the agent token"',
        "",
    ].join("\n");
}
