// What every Kubernetes-side component shares: the provider, the namespace and the CA ConfigMaps.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { expandHome, KubernetesSettings } from "../config";
import { labels, FILES } from "./manifests";
import { CA_CONFIGMAP_NAME } from "../agent";

/**
 * Provider arguments from config, or undefined for the ambient kubeconfig and context (then no
 * explicit provider is created and the default one applies, as `kubectl` would behave).
 */
export function kubernetesProviderArgs(kube: KubernetesSettings): k8s.ProviderArgs | undefined {
    if (!kube.kubeconfig && !kube.context) return undefined;
    const args: { kubeconfig?: string; context?: string } = {};
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
    public readonly namespace: pulumi.Output<string>;
    /** Name of the CA ConfigMap in the Consul namespace. */
    public readonly caConfigMapName: pulumi.Output<string>;

    constructor(name: string, args: KubernetesBaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:k8s:KubernetesBase", name, {}, opts);
        const kube = args.kubernetes;
        const providerArgs = kubernetesProviderArgs(kube);
        if (providerArgs) this.provider = new k8s.Provider(`${name}-provider`, providerArgs, { parent: this });
        const resourceOpts = { parent: this, ...(this.provider ? { provider: this.provider } : {}) };

        let dependsOn: pulumi.Resource[] = [];
        if (kube.createNamespace) {
            const ns = new k8s.core.v1.Namespace(
                `${name}-namespace`,
                { metadata: { name: kube.namespace, labels: { "app.kubernetes.io/part-of": "consul" } } },
                resourceOpts,
            );
            this.namespace = ns.metadata.name;
            dependsOn = [ns];
        } else {
            this.namespace = pulumi.output(kube.namespace);
        }

        // The CA is public: agents, the ACL Job and applications verify Consul's HTTPS with it.
        const caMap = (resourceName: string, namespace: pulumi.Input<string>) =>
            new k8s.core.v1.ConfigMap(
                resourceName,
                {
                    metadata: { name: CA_CONFIGMAP_NAME, namespace, labels: labels("client") },
                    data: { [FILES.caCert]: args.caCertPem },
                },
                { ...resourceOpts, dependsOn },
            );
        this.caConfigMapName = caMap(`${name}-ca`, this.namespace).metadata.name;
        for (const appNamespace of kube.appNamespaces) {
            if (appNamespace === kube.namespace) continue;
            caMap(`${name}-ca-${appNamespace}`, appNamespace);
        }
        this.registerOutputs({ namespace: this.namespace });
    }

    /** Options for resources that live in this cluster. */
    resourceOptions(parent: pulumi.Resource): pulumi.CustomResourceOptions {
        return { parent, ...(this.provider ? { provider: this.provider } : {}) };
    }
}
