// Consul client agents on Kubernetes: a DaemonSet, one agent per node, as seed 003 runs them in
// production (host network, node ID on a hostPath), joining in-cluster or VM servers.
//
// How apps trust their node-local agent: with auto_encrypt alone the agent's HTTPS certificate
// comes from Consul's Connect CA, which apps cannot know in advance (the Helm chart fetches it
// with an init container). Instead the agents' HTTPS listener gets a certificate from our CA for
// client.<dc>.<domain> (+ localhost, 127.0.0.1); Consul prefers it over the auto_encrypt one on
// HTTPS only, so internal RPC and gRPC keep auto_encrypt. Apps set CONSUL_HTTP_ADDR=
// https://$(HOST_IP):8501, CONSUL_CACERT=<consul-ca ConfigMap>/ca.crt and
// CONSUL_TLS_SERVER_NAME=client.<dc>.<domain>. Checked against a real 1.16.2 agent on loopback.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { agentObjects } from "./agent-objects";
import {
    clientDaemonSetSpec,
    DELETION_PROPAGATION_ANNOTATION,
    FILES,
    kubernetesClientConfig,
    labels,
    WorkloadSettings,
} from "./manifests";
import { CLIENT_NAME } from "../agent";
import { IssuedCert } from "../security";

export interface ConsulClientsArgs {
    readonly settings: WorkloadSettings;
    readonly namespace: pulumi.Input<string>;
    readonly caCertPem: pulumi.Input<string>;
    readonly caConfigMapName: pulumi.Input<string>;
    /** Our-CA certificate for the agents' HTTPS listener (see clientTlsName in names.ts). */
    readonly httpsCert: IssuedCert;
    /** Rendered secret fragment (gossip key, agent token); a secret. */
    readonly secretConfig: pulumi.Output<string>;
    readonly provider?: k8s.Provider;
}

export class ConsulClients extends pulumi.ComponentResource {
    public readonly daemonSet: k8s.apps.v1.DaemonSet;
    public readonly checksum: pulumi.Output<string>;

    constructor(name: string, args: ConsulClientsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:k8s:ConsulClients", name, {}, opts);
        const { settings, namespace } = args;
        const o = { parent: this, ...(args.provider ? { provider: args.provider } : {}) };
        const meta = (objectName: string) => ({ name: objectName, namespace, labels: labels("client") });

        const { configMap, secretConfig, tlsSecret, checksum } = agentObjects(
            name,
            {
                role: "client",
                objectName: CLIENT_NAME,
                namespace,
                configFile: FILES.clientConfig,
                config: kubernetesClientConfig(settings),
                secretConfig: args.secretConfig,
                caCertPem: args.caCertPem,
                cert: args.httpsCert,
                tlsSuffix: "https",
            },
            o,
        );
        this.checksum = checksum;

        // A replacement (a new namespace, a new selector) deletes the old DaemonSet and waits for
        // its pods (foreground) before creating the new one: two agents on one node would fight
        // over the host ports and share the hostPath data dir, and the new pods, unschedulable
        // next to the old ones, would hold the update until its timeout.
        this.daemonSet = new k8s.apps.v1.DaemonSet(
            `${name}-daemonset`,
            {
                metadata: {
                    ...meta(CLIENT_NAME),
                    annotations: { [DELETION_PROPAGATION_ANNOTATION]: "foreground" },
                },
                spec: clientDaemonSetSpec(
                    settings,
                    {
                        configMap: configMap.metadata.name,
                        secretConfig: secretConfig.metadata.name,
                        httpsSecret: tlsSecret.metadata.name,
                        caConfigMap: args.caConfigMapName,
                    },
                    this.checksum,
                ),
            },
            { ...o, deleteBeforeReplace: true },
        );
        this.registerOutputs({ checksum: this.checksum });
    }
}
