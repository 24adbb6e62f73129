// What every Kubernetes-side component shares: the provider, the two namespaces with their Pod
// Security levels, and the CA ConfigMaps.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { expandHome, KUBERNETES_PROVIDER_SETTINGS, KubernetesSettings } from "../config";

export { KUBERNETES_PROVIDER_SETTINGS };
import { clientNamespaceLabels, FILES, labels, serverNamespaceLabels } from "./manifests";
import { CA_CONFIGMAP_NAME } from "../agent";

/**
 * Provider arguments from config, or undefined for the ambient kubeconfig and context (then no
 * explicit provider is created and the default one applies, as `kubectl` would behave).
 */
export function kubernetesProviderArgs(kube: KubernetesSettings): k8s.ProviderArgs | undefined {
    if (!kube.kubeconfig && !kube.context) return undefined;
    const args: k8s.ProviderArgs & { kubeconfig?: string; context?: string } = { ...KUBERNETES_PROVIDER_SETTINGS };
    // The provider accepts a path or the file's content; a path keeps credentials out of the state.
    if (kube.kubeconfig) {
        args.kubeconfig = expandHome(kube.kubeconfig);
    }
    if (kube.context) args.context = kube.context;
    return args;
}

export interface KubernetesBaseArgs {
    readonly kubernetes: KubernetesSettings;
    readonly caCertPem: pulumi.Input<string>;
}

export class KubernetesBase extends pulumi.ComponentResource {
    /** Set when the stack names a kubeconfig or context. */
    public readonly provider?: k8s.Provider;
    /** Servers, the ACL Job and their objects (Pod Security `restricted`). */
    public readonly namespace: pulumi.Output<string>;
    /** Name of the CA ConfigMap in the Consul namespace. */
    public readonly caConfigMapName: pulumi.Output<string>;
    /** The client agents' namespace (Pod Security `privileged`) and its CA ConfigMap; set when clients run. */
    public readonly clients?: {
        readonly namespace: pulumi.Output<string>;
        readonly caConfigMapName: pulumi.Output<string>;
    };

    constructor(name: string, args: KubernetesBaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:k8s:KubernetesBase", name, {}, opts);
        const kube = args.kubernetes;
        const providerArgs = kubernetesProviderArgs(kube);
        if (providerArgs) this.provider = new k8s.Provider(`${name}-provider`, providerArgs, { parent: this });
        const resourceOpts = { parent: this, ...(this.provider ? { provider: this.provider } : {}) };

        // Each namespace with its Pod Security labels (namespaces.ts); with k8sCreateNamespace false
        // they must exist, and their labels are the operator's.
        // `retain`: deleting a namespace deletes every claim in it, whatever the StatefulSet's PVC
        // retention says; so with pvcRetentionWhenDeleted Retain, destroy leaves the servers' one.
        const namespace = (resourceName: string, nsName: string, labels: Record<string, string>, retain = false) => {
            if (!kube.createNamespace) return { name: pulumi.output(nsName), dependsOn: [] };
            const ns = new k8s.core.v1.Namespace(
                resourceName,
                { metadata: { name: nsName, labels } },
                { ...resourceOpts, retainOnDelete: retain },
            );
            return { name: ns.metadata.name, dependsOn: [ns] };
        };
        // The CA is public: agents, the ACL Job and applications verify Consul's HTTPS with it.
        const caMap = (resourceName: string, ns: pulumi.Input<string>, dependsOn: pulumi.Resource[] = []) =>
            new k8s.core.v1.ConfigMap(
                resourceName,
                {
                    metadata: { name: CA_CONFIGMAP_NAME, namespace: ns, labels: labels("client") },
                    data: { [FILES.caCert]: args.caCertPem },
                },
                { ...resourceOpts, dependsOn },
            );

        const servers = namespace(
            `${name}-namespace`,
            kube.namespace,
            serverNamespaceLabels(),
            kube.pvcRetentionWhenDeleted === "Retain",
        );
        this.namespace = servers.name;
        this.caConfigMapName = caMap(`${name}-ca`, this.namespace, servers.dependsOn).metadata.name;
        if (kube.clientsEnabled) {
            const clients = namespace(`${name}-client-namespace`, kube.clientNamespace, clientNamespaceLabels());
            this.clients = {
                namespace: clients.name,
                caConfigMapName: caMap(`${name}-client-ca`, clients.name, clients.dependsOn).metadata.name,
            };
        }
        for (const appNamespace of kube.appNamespaces) {
            if (appNamespace === kube.namespace) continue;
            caMap(`${name}-ca-${appNamespace}`, appNamespace);
        }
        this.registerOutputs({ namespace: this.namespace, clientNamespace: this.clients?.namespace });
    }

    /** Options for resources that live in this cluster. */
    resourceOptions(parent: pulumi.Resource): pulumi.CustomResourceOptions {
        return { parent, ...(this.provider ? { provider: this.provider } : {}) };
    }
}
