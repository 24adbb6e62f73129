// The agent token, created once by a Kubernetes Job. The servers bootstrap the ACL system
// themselves with acl.tokens.initial_management; this Job then creates the agent policy and a
// token whose SecretID every agent already has (acl.tokens.agent), unless that token exists.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { agentPolicyBody } from "../security";
import { aclJobSpec, agentTokenBody, FILES, labels, tokenHeader, WorkloadSettings } from "./manifests";

export interface ConsulAclAgentTokenArgs {
    readonly settings: WorkloadSettings;
    readonly namespace: pulumi.Input<string>;
    readonly caConfigMapName: pulumi.Input<string>;
    readonly managementToken: pulumi.Output<string>;
    readonly agentToken: pulumi.Output<string>;
    readonly provider?: k8s.Provider;
}

export class ConsulAclAgentToken extends pulumi.ComponentResource {
    public readonly job: k8s.batch.v1.Job;
    /** The Secret with the token header files (the server-count Job reads the management one). */
    public readonly secretName: pulumi.Output<string>;

    constructor(name: string, args: ConsulAclAgentTokenArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:k8s:ConsulAclAgentToken", name, {}, opts);
        const o = { parent: this, ...(args.provider ? { provider: args.provider } : {}) };
        const meta = (objectName: string) => ({
            name: objectName,
            namespace: args.namespace,
            labels: labels("acl-init"),
        });

        const secret = new k8s.core.v1.Secret(
            `${name}-secret`,
            {
                metadata: meta("consul-acl-init"),
                type: "Opaque",
                stringData: {
                    [FILES.managementHeader]: pulumi.secret(args.managementToken.apply(tokenHeader)),
                    [FILES.agentHeader]: pulumi.secret(args.agentToken.apply(tokenHeader)),
                    [FILES.agentToken]: pulumi.secret(args.agentToken.apply(agentTokenBody)),
                },
            },
            o,
        );
        this.secretName = secret.metadata.name;
        const policy = new k8s.core.v1.ConfigMap(
            `${name}-policy`,
            { metadata: meta("consul-acl-agent-policy"), data: { [FILES.agentPolicy]: agentPolicyBody() } },
            o,
        );
        // A Job's pod template is immutable: replace it rather than fail on a changed spec.
        this.job = new k8s.batch.v1.Job(
            `${name}-job`,
            {
                metadata: meta("consul-acl-agent-token"),
                spec: aclJobSpec(args.settings, {
                    secret: secret.metadata.name,
                    policyConfigMap: policy.metadata.name,
                    caConfigMap: args.caConfigMapName,
                }),
            },
            { ...o, replaceOnChanges: ["spec"], deleteBeforeReplace: true },
        );
        this.registerOutputs({});
    }
}
