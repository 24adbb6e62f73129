// Consul servers on Kubernetes: a StatefulSet behind a headless Service (seed 000, hardened the
// way the Helm chart does it). Every manifest piece comes from manifests/.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { agentObjects } from "./agent-objects";
import {
    FILES,
    kubernetesServerConfig,
    labels,
    serverHeadlessServiceSpec,
    serverPdbSpec,
    serverStatefulSetAnnotations,
    serverStatefulSetSpec,
    uiServiceSpec,
    WorkloadSettings,
} from "./manifests";
import { SERVER_NAME, UI_SERVICE_NAME } from "../agent";
import { IssuedCert } from "../security";

export interface ConsulServersArgs {
    readonly settings: WorkloadSettings;
    readonly namespace: pulumi.Input<string>;
    readonly caCertPem: pulumi.Input<string>;
    /** The shared in-cluster server certificate. */
    readonly serverCert: IssuedCert;
    /** Rendered secret fragment (gossip key, ACL tokens); a secret. */
    readonly secretConfig: pulumi.Output<string>;
    readonly provider?: k8s.Provider;
}

export class ConsulServers extends pulumi.ComponentResource {
    public readonly statefulSet: k8s.apps.v1.StatefulSet;
    public readonly headlessService: k8s.core.v1.Service;
    public readonly uiService: k8s.core.v1.Service;
    /** sha256 of config + certificates + hash of the secret fragment; never secret itself. */
    public readonly checksum: pulumi.Output<string>;

    constructor(name: string, args: ConsulServersArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:k8s:ConsulServers", name, {}, opts);
        const { settings, namespace } = args;
        const o = { parent: this, ...(args.provider ? { provider: args.provider } : {}) };
        const meta = (objectName: string) => ({ name: objectName, namespace, labels: labels("server") });

        const { configMap, secretConfig, tlsSecret, checksum } = agentObjects(
            name,
            {
                role: "server",
                objectName: SERVER_NAME,
                namespace,
                configFile: FILES.serverConfig,
                config: kubernetesServerConfig(settings),
                secretConfig: args.secretConfig,
                caCertPem: args.caCertPem,
                cert: args.serverCert,
                tlsSuffix: "tls",
            },
            o,
        );
        this.checksum = checksum;

        this.headlessService = new k8s.core.v1.Service(
            `${name}-headless`,
            { metadata: meta(SERVER_NAME), spec: serverHeadlessServiceSpec(settings.ports) },
            o,
        );
        this.uiService = new k8s.core.v1.Service(
            `${name}-ui`,
            { metadata: meta(UI_SERVICE_NAME), spec: uiServiceSpec(settings) },
            o,
        );
        new k8s.policy.v1.PodDisruptionBudget(
            `${name}-pdb`,
            { metadata: meta(SERVER_NAME), spec: serverPdbSpec(settings.serverCount) },
            o,
        );
        const annotations = serverStatefulSetAnnotations(settings.kubernetes);
        this.statefulSet = new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            {
                // No annotations object at all when there is none: an empty one would be a diff.
                metadata: { ...meta(SERVER_NAME), ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
                spec: serverStatefulSetSpec(
                    settings,
                    {
                        configMap: configMap.metadata.name,
                        secretConfig: secretConfig.metadata.name,
                        tlsSecret: tlsSecret.metadata.name,
                        headlessService: this.headlessService.metadata.name,
                    },
                    this.checksum,
                ),
            },
            o,
        );
        this.registerOutputs({ checksum: this.checksum });
    }
}
