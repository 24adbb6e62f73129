// The Pod Security levels of our two namespaces, as labels the API server's PodSecurity admission
// reads. The servers and the ACL Job meet `restricted`; the client agents cannot meet even
// `baseline` (seed 003: hostNetwork, a hostPath data dir; the host ports follow from hostNetwork),
// so they get a namespace of their own where `privileged` is enforced on purpose, with warn and
// audit at `restricted` so every violation stays visible. Checked on a real kube-apiserver
// (tests/kubernetes/pod-security.test.ts).

export type PodSecurityLevel = "restricted" | "baseline" | "privileged";

/**
 * The policy version the levels are pinned to: the Kubernetes minor the suite runs (kube-apiserver
 * 1.34), so a newer API server does not tighten `restricted` under running workloads unannounced.
 */
export const POD_SECURITY_VERSION = "v1.34";

const LABEL_PREFIX = "pod-security.kubernetes.io";

/** `enforce` at the given level, `warn` and `audit` at `restricted`, every mode pinned. */
export function podSecurityLabels(enforce: PodSecurityLevel): Record<string, string> {
    const modes: Record<"enforce" | "warn" | "audit", PodSecurityLevel> = {
        enforce,
        warn: "restricted",
        audit: "restricted",
    };
    const labels: Record<string, string> = {};
    for (const [mode, level] of Object.entries(modes)) {
        labels[`${LABEL_PREFIX}/${mode}`] = level;
        labels[`${LABEL_PREFIX}/${mode}-version`] = POD_SECURITY_VERSION;
    }
    return labels;
}

/** The servers' namespace: `restricted` in every mode. */
export function serverNamespaceLabels(): Record<string, string> {
    return { "app.kubernetes.io/part-of": "consul", ...podSecurityLabels("restricted") };
}

/** The client agents' namespace: `privileged` enforced on purpose, warned and audited at `restricted`. */
export function clientNamespaceLabels(): Record<string, string> {
    return { "app.kubernetes.io/part-of": "consul", ...podSecurityLabels("privileged") };
}
