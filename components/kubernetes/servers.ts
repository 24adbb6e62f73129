// Consul servers on Kubernetes: a StatefulSet behind a headless Service (seed 000, hardened the
// way the Helm chart does it). Every manifest piece comes from k8s-manifests.ts.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { renderJson } from "../agent/config";
import { Settings } from "../config";
import {
    configChecksum,
    FILES,
    kubernetesServerConfig,
    labels,
    serverHeadlessServiceSpec,
    serverPdbSpec,
    serverStatefulSetSpec,
    sha256,
    uiServiceSpec,
} from "./manifests";
import { SERVER_NAME, UI_SERVICE_NAME } from "../agent/names";
import { IssuedCert } from "../security/pki";

export interface ConsulServersArgs {
    readonly settings: Settings;
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

        const configJson = renderJson(kubernetesServerConfig(settings));
        const configMap = new k8s.core.v1.ConfigMap(
            `${name}-config`,
            { metadata: meta(`${SERVER_NAME}-config`), data: { [FILES.serverConfig]: configJson } },
            o,
        );
        const secretConfig = new k8s.core.v1.Secret(
            `${name}-secret-config`,
            {
                metadata: meta(`${SERVER_NAME}-secret-config`),
                type: "Opaque",
                stringData: { [FILES.secretConfig]: pulumi.secret(args.secretConfig) },
            },
            o,
        );
        const tlsSecret = new k8s.core.v1.Secret(
            `${name}-tls`,
            {
                metadata: meta(`${SERVER_NAME}-tls`),
                type: "kubernetes.io/tls",
                stringData: {
                    [FILES.caCert]: args.caCertPem,
                    [FILES.tlsCert]: args.serverCert.certPem,
                    [FILES.tlsKey]: pulumi.secret(args.serverCert.privateKeyPem),
                },
            },
            o,
        );

        // A change in config, certificates or secrets rolls the pods; the secret enters only as a hash.
        this.checksum = pulumi.unsecret(
            pulumi
                .all([args.caCertPem, args.serverCert.certPem, args.secretConfig])
                .apply(([ca, cert, secret]) => configChecksum([configJson, ca, cert, sha256(secret)])),
        );

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
        this.statefulSet = new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            {
                metadata: meta(SERVER_NAME),
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
