// The metrics policy and token on the VM path: upserted on the first server after the agent's ACL
// step, by the same ACL script. The token's SecretID travels on the command's stdin (a secret in
// the state) and rests on no host: only the Prometheus that uses it keeps it.

import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import type { Host } from "../config";
import { METRICS_POLICY_NAME, metricsPolicyBody } from "../security";
import { aclScript, wrapForUser } from "./scripts";

export function metricsAclCommand(
    name: string,
    host: Host,
    args: {
        readonly connection: remote.CommandArgs["connection"];
        readonly sshUser: string;
        readonly httpsPort: number;
        readonly waitSeconds: number;
        readonly token: pulumi.Output<string>;
    },
    opts: pulumi.CustomResourceOptions,
): remote.Command {
    return new remote.Command(
        name,
        {
            connection: args.connection,
            create: wrapForUser(
                aclScript({
                    nodeName: host.name,
                    httpsPort: args.httpsPort,
                    policyName: METRICS_POLICY_NAME,
                    policyJson: metricsPolicyBody(),
                    waitSeconds: args.waitSeconds,
                    token: "metrics",
                }),
                args.sshUser,
            ),
            stdin: args.token,
            logging: "stdout",
            addPreviousOutputInEnv: false,
        },
        { ...opts, additionalSecretOutputs: ["stdin"] },
    );
}
