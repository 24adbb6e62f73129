// The Kubernetes provider settings this program relies on: one list, for the explicit provider's
// arguments (components/kubernetes/base.ts), Pulumi.yaml's project config (npm run sync-config) and
// the check of a stack that turns one off.

/**
 * What every Kubernetes provider of this program must be told, the default one through Pulumi.yaml
 * (scripts/sync-pulumi-yaml.ts writes these there as `kubernetes:` project config). Without them the
 * provider replaces a ConfigMap or Secret whose data changes, and as their names are fixed it
 * deletes them first, and with them the StatefulSet and DaemonSet that mount them: a logLevel
 * change would delete every server at once (found by tests/k8s-real on a real cluster). Mutable,
 * they are updated in place, and the pods roll by their config checksum, one at a time.
 */
export const KUBERNETES_PROVIDER_SETTINGS = { enableConfigMapMutable: true, enableSecretMutable: true } as const;

/**
 * Pulumi.yaml turns on the provider settings the Kubernetes workloads rely on; a stack that turns
 * one off would have a config change delete the StatefulSet (KUBERNETES_PROVIDER_SETTINGS).
 */
export function checkKubernetesProvider(
    problems: { add(key: string, value: unknown, problem: string): void },
    provider: Readonly<Record<string, string>>,
): void {
    for (const [name, wanted] of Object.entries(KUBERNETES_PROVIDER_SETTINGS)) {
        const value = provider[name];
        if (value !== undefined && value !== String(wanted)) {
            problems.add(
                `kubernetes:${name}`,
                value,
                `must stay ${String(wanted)} (Pulumi.yaml sets it): otherwise a changed ConfigMap or Secret is replaced, deleting the StatefulSet that mounts it, every server at once; remove the key from the stack's config.`,
            );
        }
    }
}
