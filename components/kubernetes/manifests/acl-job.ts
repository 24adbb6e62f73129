// The Job that upserts the agent policy and creates the agent token on the Kubernetes side.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { AGENT_POLICY_NAME, agentPolicyBody } from "../../security";
import { aclAgentTokenScript } from "../scripts";
import { serverHttpsUrls } from "./agent-config";
import { CHECKSUM_ANNOTATION, FILES, labels, MOUNTS, sha256, WorkloadSettings } from "./common";
import { containerSecurityContext, podSecurityContext } from "./pod";

export interface AclJobNames {
    readonly secret: pulumi.Input<string>;
    readonly policyConfigMap: pulumi.Input<string>;
    readonly caConfigMap: pulumi.Input<string>;
}

export function aclJobSpec(settings: WorkloadSettings, names: AclJobNames): k8s.types.input.batch.v1.JobSpec {
    const kube = settings.kubernetes;
    const script = aclAgentTokenScript({
        caFile: `${MOUNTS.ca}/${FILES.caCert}`,
        managementHeaderFile: `${MOUNTS.acl}/${FILES.managementHeader}`,
        agentHeaderFile: `${MOUNTS.acl}/${FILES.agentHeader}`,
        policyFile: `${MOUNTS.aclPolicy}/${FILES.agentPolicy}`,
        policyName: AGENT_POLICY_NAME,
        tokenFile: `${MOUNTS.acl}/${FILES.agentToken}`,
        maxAttempts: 120,
    });
    return {
        backoffLimit: 6,
        template: {
            // A changed policy changes the pod template, so the Job is replaced and runs again.
            metadata: { labels: labels("acl-init"), annotations: { [CHECKSUM_ANNOTATION]: sha256(agentPolicyBody()) } },
            spec: {
                restartPolicy: "OnFailure",
                securityContext: podSecurityContext(),
                automountServiceAccountToken: false,
                volumes: [
                    { name: "acl", secret: { secretName: names.secret, defaultMode: 0o440 } },
                    { name: "policy", configMap: { name: names.policyConfigMap } },
                    { name: "ca", configMap: { name: names.caConfigMap } },
                ],
                containers: [
                    {
                        name: "create-agent-token",
                        image: kube.image,
                        command: ["/bin/sh", "-ec", script],
                        env: [{ name: "CONSUL_ADDRS", value: serverHttpsUrls(settings).join(" ") }],
                        resources: {
                            requests: { cpu: "10m", memory: "32Mi" },
                            limits: { cpu: "100m", memory: "64Mi" },
                        },
                        securityContext: containerSecurityContext(),
                        volumeMounts: [
                            { name: "acl", mountPath: MOUNTS.acl, readOnly: true },
                            { name: "policy", mountPath: MOUNTS.aclPolicy, readOnly: true },
                            { name: "ca", mountPath: MOUNTS.ca, readOnly: true },
                        ],
                    },
                ],
            },
        },
    };
}
