// What every Kubernetes object of ours shares: the consul user, where things are mounted in the
// containers, labels, and the checksum that rolls pods when their config changes.

import * as crypto from "crypto";
import type { AgentSettings } from "../../agent";
import type { KubernetesSettings, Settings, VmSettings } from "../../config";

/** The slice of Settings the Kubernetes workloads read. */
export type WorkloadSettings = AgentSettings &
    Pick<Settings, "topology"> & {
        readonly kubernetes: KubernetesSettings;
        /** Hybrid: the VM servers the client agents join. */
        readonly vm?: Pick<VmSettings, "servers">;
    };

/** The image's `consul` user and group (uid 100, gid 1000), as the Helm chart runs them. */
export const CONSUL_UID = 100;
export const CONSUL_GID = 1000;

/** Where things are mounted inside the agent containers. */
export const MOUNTS = {
    config: "/consul/config",
    secretConfig: "/consul/secret",
    tls: "/consul/tls",
    ca: "/consul/ca",
    data: "/consul/data",
    extra: "/consul/extra",
    tmp: "/tmp",
    acl: "/consul/acl",
    aclPolicy: "/consul/acl-policy",
} as const;

export const FILES = {
    serverConfig: "server.json",
    clientConfig: "client.json",
    secretConfig: "secret.json",
    /** The startup-only keys (STARTUP_ONLY_KEYS), beside the main config in its ConfigMap. */
    startupConfig: "startup-only.json",
    caCert: "ca.crt",
    tlsCert: "tls.crt",
    tlsKey: "tls.key",
    addressConfig: "addresses.json",
    managementHeader: "management-token.header",
    agentHeader: "agent-token.header",
    agentToken: "agent-token.json",
    agentPolicy: "agent-policy.json",
} as const;

/**
 * The config files an agent container loads, in order: its main config and the startup-only keys
 * (one ConfigMap), then the secret fragment.
 */
export function agentConfigFiles(mainConfigFile: string): string[] {
    return [
        `${MOUNTS.config}/${mainConfigFile}`,
        `${MOUNTS.config}/${FILES.startupConfig}`,
        `${MOUNTS.secretConfig}/${FILES.secretConfig}`,
    ];
}

/** Pod annotation whose value changes whenever the agent config or certificates change. */
export const CHECKSUM_ANNOTATION = "consul.pulumi.com/config-checksum";

/** The Kubernetes provider's switch for its readiness wait on an object ("true": report it done once applied). */
export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";

/** How the Kubernetes provider deletes an object (and its dependents) before it reports the delete done. */
export const DELETION_PROPAGATION_ANNOTATION = "pulumi.com/deletionPropagationPolicy";

export type Component = "server" | "client" | "acl-init" | "server-count";

export function selectorLabels(component: Component): Record<string, string> {
    return { "app.kubernetes.io/name": "consul", "app.kubernetes.io/component": component };
}

export function labels(component: Component): Record<string, string> {
    return {
        ...selectorLabels(component),
        "app.kubernetes.io/part-of": "consul",
        "app.kubernetes.io/managed-by": "pulumi",
    };
}

/**
 * sha256 over the given parts, each length-prefixed so that moving bytes between parts changes the
 * result. Callers pass a hash of the secret fragment, never the fragment itself.
 */
export function configChecksum(parts: readonly string[]): string {
    const hash = crypto.createHash("sha256");
    for (const part of parts) hash.update(`${Buffer.byteLength(part)}:`).update(part);
    return hash.digest("hex");
}

export function sha256(text: string): string {
    return crypto.createHash("sha256").update(text).digest("hex");
}
