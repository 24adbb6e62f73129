// Resource policies: each looks at one resource as it is registered.

import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { isDevelopmentStack } from "../components/config";
import {
    TYPES,
    isObject,
    parseJson,
    stackOfUrn,
    agentConfigs,
    secretFragments,
    containersOf,
    labelsOf,
    isConsulContainer,
    containerStrings,
    COMMAND_FIELDS,
    get,
    isValidGossipKey,
    CURL_INSECURE,
} from "./inspect";

export const tlsVerification: ResourceValidationPolicy = {
    name: "consul-tls-verification",
    description:
        "Consul agents verify TLS: outgoing connections and server hostnames always, incoming RPC on servers; no tool skips verification.",
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
        for (const { where, config } of agentConfigs(args.type, args.props)) {
            const problems: string[] = [];
            if (!get(config, "tls", "defaults", "ca_file")) problems.push("tls.defaults.ca_file is not set");
            if (get(config, "tls", "defaults", "verify_outgoing") !== true)
                problems.push("tls.defaults.verify_outgoing is not true");
            if (get(config, "tls", "internal_rpc", "verify_server_hostname") !== true)
                problems.push("tls.internal_rpc.verify_server_hostname is not true");
            if (config.server === true && get(config, "tls", "internal_rpc", "verify_incoming") !== true)
                problems.push("tls.internal_rpc.verify_incoming is not true on a server");
            for (const legacy of ["verify_outgoing", "verify_incoming", "verify_server_hostname"]) {
                if (config[legacy] === false) problems.push(`the deprecated top-level ${legacy} is false`);
            }
            for (const p of problems) report(`${where}: ${p}.`);
        }
        for (const { where, container } of containersOf(args.type, args.props)) {
            if (Array.isArray(container.env)) {
                for (const e of container.env) {
                    if (isObject(e) && e.name === "CONSUL_HTTP_SSL_VERIFY" && String(e.value).toLowerCase() === "false")
                        report(`${where}: CONSUL_HTTP_SSL_VERIFY=false turns off certificate verification.`);
                }
            }
            for (const { where: field, value } of containerStrings(container)) {
                if (CURL_INSECURE.test(value)) report(`${where} ${field}: curl without certificate verification.`);
            }
        }
        if (args.type === TYPES.command) {
            for (const field of COMMAND_FIELDS) {
                const value: unknown = args.props[field];
                if (typeof value === "string" && CURL_INSECURE.test(value))
                    report(`${field}: curl without certificate verification.`);
            }
        }
    },
};

export const gossipEncryption: ResourceValidationPolicy = {
    name: "consul-gossip-encryption",
    description:
        "Gossip is encrypted: agents verify incoming and outgoing gossip encryption, and every secret fragment holds a valid key.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        const configs = agentConfigs(args.type, args.props);
        for (const { where, config } of configs) {
            for (const key of ["encrypt_verify_incoming", "encrypt_verify_outgoing"]) {
                if (config[key] !== true) report(`${where}: ${key} is not true.`);
            }
        }
        const fragments = secretFragments(args.type, args.props);
        for (const { where, config } of fragments) {
            if (!isValidGossipKey(config.encrypt))
                report(`${where}: encrypt is not a base64 key of 16, 24 or 32 bytes (consul keygen makes one).`);
        }
        // A VM host's bundle must carry the key next to the config.
        if (args.type === TYPES.command && configs.length > 0 && fragments.length === 0) {
            report("stdin: an agent config without a secret fragment holding the gossip key (encrypt).");
        }
    },
};

export const aclDefaultDeny: ResourceValidationPolicy = {
    name: "consul-acl-default-deny",
    description: "Outside dev/test stacks, ACLs are enabled with default_policy deny.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (isDevelopmentStack(stackOfUrn(args.urn))) return;
        for (const { where, config } of agentConfigs(args.type, args.props)) {
            if (get(config, "acl", "enabled") !== true) report(`${where}: acl.enabled is not true.`);
            if (get(config, "acl", "default_policy") !== "deny")
                report(
                    `${where}: acl.default_policy is ${JSON.stringify(get(config, "acl", "default_policy"))}, not "deny".`,
                );
        }
    },
};

export const pinnedSshHostKeys: ResourceValidationPolicy = {
    name: "consul-pinned-ssh-host-keys",
    description:
        "Outside development stacks, every remote command's SSH connection pins the host key: the stdin bundle carries the gossip key, TLS keys and tokens.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (args.type !== TYPES.command || isDevelopmentStack(stackOfUrn(args.urn))) return;
        const connection = isObject(args.props.connection) ? args.props.connection : {};
        const hostKey = connection.hostKey;
        if (typeof hostKey !== "string" || !/^\S+ AAAA\S+$/.test(hostKey.trim()))
            report(`connection to ${String(connection.host)} accepts any host key (connection.hostKey is not set).`);
    },
};

function isOdd(value: unknown): boolean {
    return typeof value === "number" && Number.isInteger(value) && value >= 1 && value % 2 === 1;
}

export const oddServerCount: ResourceValidationPolicy = {
    name: "consul-odd-server-count",
    description:
        "An odd number of Consul servers (bootstrap_expect and StatefulSet replicas): an even count adds no failure tolerance.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        for (const { where, config } of agentConfigs(args.type, args.props)) {
            if (config.server === true && !isOdd(config.bootstrap_expect))
                report(`${where}: bootstrap_expect ${JSON.stringify(config.bootstrap_expect)} is not an odd count.`);
        }
        if (args.type === TYPES.statefulSet) {
            const labels = labelsOf(args.props);
            if (labels["app.kubernetes.io/name"] === "consul" && labels["app.kubernetes.io/component"] === "server") {
                const replicas = get(args.props, "spec", "replicas");
                if (!isOdd(replicas)) report(`spec.replicas ${JSON.stringify(replicas)} is not an odd count.`);
            }
        }
    },
};

export const containerResources: ResourceValidationPolicy = {
    name: "consul-container-resources",
    description: "Every Consul container (and init container) sets CPU and memory requests and limits.",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        for (const { where, container } of containersOf(args.type, args.props)) {
            if (!isConsulContainer(args.props, container)) continue;
            const missing: string[] = [];
            for (const kind of ["requests", "limits"]) {
                for (const resource of ["cpu", "memory"]) {
                    if (!get(container, "resources", kind, resource)) missing.push(`${kind}.${resource}`);
                }
            }
            if (missing.length > 0) report(`${where}: no resources ${missing.join(", ")}.`);
        }
    },
};

// Text that is a Consul secret whatever its value: keys, token headers, the secret fragment's keys.
const SECRET_TEXT: readonly [RegExp, string][] = [
    [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
    [/X-Consul-Token:\s*[0-9a-fA-F-]{8,}/, "an ACL token header"],
    [/(^|\s)-?-encrypt[= ]/, "the gossip key as a command-line flag"],
    [/"encrypt"\s*:/, "the gossip key (encrypt)"],
    [/"initial_management"\s*:|"agent_recovery"\s*:/, "an ACL token"],
    [/"SecretID"\s*:\s*"[0-9a-fA-F-]{8,}/, "an ACL token SecretID"],
];

// Env vars that hold credentials; they must come from a Secret (valueFrom), never a literal.
const SECRET_ENV = /^(CONSUL_HTTP_TOKEN|CONSUL_GOSSIP_KEY|CONSUL_ENCRYPT_KEY|CONSUL_CLIENT_KEY_PEM)$/;

function secretTextIn(value: string): string | undefined {
    for (const [pattern, what] of SECRET_TEXT) if (pattern.test(value)) return what;
    return undefined;
}

export const noSecretInConfigMapOrArgs: ResourceValidationPolicy = {
    name: "consul-no-secret-in-configmap-or-args",
    description:
        "No Consul secret (gossip key, ACL token, private key) in a ConfigMap, a container's command, args or literal env, or a remote command line (secrets go on stdin).",
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
        if (args.type === TYPES.configMap) {
            for (const field of ["data", "binaryData"]) {
                const data: unknown = args.props[field];
                if (!isObject(data)) continue;
                for (const [key, raw] of Object.entries(data)) {
                    if (typeof raw !== "string") continue;
                    const value = field === "binaryData" ? Buffer.from(raw, "base64").toString("utf8") : raw;
                    const what = secretTextIn(value);
                    if (what) report(`${field}["${key}"] holds ${what}; put it in a Secret.`);
                    const config = parseJson(value);
                    if (config && isObject(get(config, "acl", "tokens")))
                        report(`${field}["${key}"] holds acl.tokens; put them in a Secret.`);
                }
            }
        }
        for (const { where, container } of containersOf(args.type, args.props)) {
            for (const { where: field, value } of containerStrings(container)) {
                const what = secretTextIn(value);
                if (what) report(`${where} ${field} holds ${what}; mount it from a Secret.`);
            }
            if (Array.isArray(container.env)) {
                for (const e of container.env) {
                    if (isObject(e) && typeof e.name === "string" && SECRET_ENV.test(e.name) && e.value !== undefined)
                        report(`${where} env ${e.name} is a literal; use valueFrom.secretKeyRef.`);
                }
            }
        }
        if (args.type === TYPES.command) {
            for (const field of [...COMMAND_FIELDS, "environment"] as const) {
                const value: unknown = args.props[field];
                const text = typeof value === "string" ? value : isObject(value) ? JSON.stringify(value) : undefined;
                const what = text === undefined ? undefined : secretTextIn(text);
                if (what) report(`${field} holds ${what}; pass secrets on stdin.`);
            }
        }
    },
};
