// The three objects every agent workload mounts: its config (ConfigMap), its secret fragment
// (Secret) and its TLS Secret, and the checksum over them that rolls the pods when one changes.
// The startup-only keys (bootstrap_expect, autopilot, retry_join) are outside the checksum, as the
// VM hosts keep them out of the restart decision: a running agent ignores them, and a pod roll at
// the moment servers are scaled down would restart the ones that stay while the departing ones
// still count as Raft voters.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { AgentConfig, AgentRole, renderJson, splitStartupOnly } from "../agent";
import { IssuedCert } from "../security";
import { configChecksum, FILES, labels, sha256 } from "./manifests";

export interface AgentObjectsArgs {
    readonly role: AgentRole;
    /** The workload's name; the objects are `<name>-config`, `<name>-secret-config`, `<name>-<tlsSuffix>`. */
    readonly objectName: string;
    readonly namespace: pulumi.Input<string>;
    /** File name of the main config in its ConfigMap. */
    readonly configFile: string;
    readonly config: AgentConfig;
    /** Rendered secret fragment (gossip key, tokens); a secret. */
    readonly secretConfig: pulumi.Output<string>;
    readonly caCertPem: pulumi.Input<string>;
    readonly cert: IssuedCert;
    /** Servers: `tls`, with the CA in the Secret. Clients: `https`, the CA comes from the CA ConfigMap. */
    readonly tlsSuffix: "tls" | "https";
}

export interface AgentObjects {
    readonly configMap: k8s.core.v1.ConfigMap;
    readonly secretConfig: k8s.core.v1.Secret;
    readonly tlsSecret: k8s.core.v1.Secret;
    /** sha256 of config + certificates + hash of the secret fragment; never secret itself. */
    readonly checksum: pulumi.Output<string>;
}

export function agentObjects(name: string, args: AgentObjectsArgs, opts: pulumi.CustomResourceOptions): AgentObjects {
    const meta = (objectName: string) => ({ name: objectName, namespace: args.namespace, labels: labels(args.role) });
    const { main, startupOnly } = splitStartupOnly(args.config);
    const configJson = renderJson(main);
    const configMap = new k8s.core.v1.ConfigMap(
        `${name}-config`,
        {
            metadata: meta(`${args.objectName}-config`),
            data: { [args.configFile]: configJson, [FILES.startupConfig]: renderJson(startupOnly) },
        },
        opts,
    );
    const secretConfig = new k8s.core.v1.Secret(
        `${name}-secret-config`,
        {
            metadata: meta(`${args.objectName}-secret-config`),
            type: "Opaque",
            stringData: { [FILES.secretConfig]: pulumi.secret(args.secretConfig) },
        },
        opts,
    );
    const tlsSecret = new k8s.core.v1.Secret(
        `${name}-${args.tlsSuffix}`,
        {
            metadata: meta(`${args.objectName}-${args.tlsSuffix}`),
            type: "kubernetes.io/tls",
            stringData: {
                ...(args.tlsSuffix === "tls" ? { [FILES.caCert]: args.caCertPem } : {}),
                [FILES.tlsCert]: args.cert.certPem,
                [FILES.tlsKey]: pulumi.secret(args.cert.privateKeyPem),
            },
        },
        opts,
    );
    // A change in config (but its startup-only keys), certificates or secrets rolls the pods; the
    // secret enters only as a hash.
    const checksum = pulumi.unsecret(
        pulumi
            .all([args.caCertPem, args.cert.certPem, args.secretConfig])
            .apply(([ca, cert, secret]) => configChecksum([configJson, ca, cert, sha256(secret)])),
    );
    return { configMap, secretConfig, tlsSecret, checksum };
}
