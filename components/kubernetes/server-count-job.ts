// autopilot's MinQuorum and Raft's voters following consul:serverCount: a Job after the StatefulSet
// (manifests/server-count-job.ts), replaced whenever its spec changes (the count, the image, the
// servers' addresses or ACLs on or off), and after a failed run.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SERVER_COUNT_JOB_NAME } from "../agent/names";
import { labels, serverCountJobSpec, WorkloadSettings } from "./manifests";

export interface ConsulServerCountArgs {
    readonly settings: WorkloadSettings;
    readonly namespace: pulumi.Input<string>;
    readonly caConfigMapName: pulumi.Input<string>;
    /** The ACL Job's Secret (its management token header); none with ACLs off. */
    readonly aclSecretName?: pulumi.Input<string>;
    readonly provider?: k8s.Provider;
}

export class ConsulServerCount extends pulumi.ComponentResource {
    public readonly job: k8s.batch.v1.Job;

    constructor(name: string, args: ConsulServerCountArgs, opts?: pulumi.ComponentResourceOptions) {
        super("consul:k8s:ConsulServerCount", name, {}, opts);
        // A Job's pod template is immutable: a new count replaces it, and the new one runs. A Job that
        // failed is replaced on the next `pulumi up` (replaceUnready) rather than waited on again.
        this.job = new k8s.batch.v1.Job(
            `${name}-job`,
            {
                metadata: {
                    name: SERVER_COUNT_JOB_NAME,
                    namespace: args.namespace,
                    labels: labels("server-count"),
                    annotations: { "pulumi.com/replaceUnready": "true" },
                },
                spec: serverCountJobSpec(args.settings, {
                    caConfigMap: args.caConfigMapName,
                    aclSecret: args.aclSecretName,
                }),
            },
            {
                parent: this,
                ...(args.provider ? { provider: args.provider } : {}),
                replaceOnChanges: ["spec"],
                deleteBeforeReplace: true,
            },
        );
        this.registerOutputs({});
    }
}
