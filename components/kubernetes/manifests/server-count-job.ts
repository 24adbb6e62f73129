// The Job that makes autopilot's MinQuorum follow consul:serverCount and waits until Raft's voters
// are the StatefulSet's pods (scripts/server-count.sh). It runs after the StatefulSet in every
// `pulumi up` that changes its spec, which carries the count (and the image and the addresses).

import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SERVER_NAME } from "../../agent/names";
import { scriptHeader } from "../../shell";
import { readShellFile } from "../../vm";
import { serverHttpsUrls } from "./agent-config";
import { FILES, labels, MOUNTS, WorkloadSettings } from "./common";
import { containerSecurityContext, podSecurityContext } from "./pod";

/** How long the Job waits for a leader and then for Raft to match the count, per attempt. */
export const SERVER_COUNT_WAIT_SECONDS = 240;
/**
 * The whole Job's limit, both attempts: under the Kubernetes provider's 10 minutes for a Job, so a
 * Job that cannot finish fails `pulumi up` with its own reason rather than the provider's timeout.
 */
export const SERVER_COUNT_DEADLINE_SECONDS = 540;

export interface ServerCountJobNames {
    readonly caConfigMap: pulumi.Input<string>;
    /** The Secret holding FILES.managementHeader; none with ACLs off. */
    readonly aclSecret?: pulumi.Input<string>;
}

/** The script the Job runs: a quoted header of its parameters, then scripts/server-count.sh. */
export function serverCountScript(settings: WorkloadSettings, acl: boolean): string {
    return (
        "#!/bin/sh\n" +
        scriptHeader({
            COUNT: settings.serverCount,
            STATEFULSET: SERVER_NAME,
            CONSUL_ADDRS: serverHttpsUrls(settings).join(" "),
            CA_FILE: `${MOUNTS.ca}/${FILES.caCert}`,
            HEADER_FILE: acl ? `${MOUNTS.acl}/${FILES.managementHeader}` : "",
            WAIT_SECONDS: SERVER_COUNT_WAIT_SECONDS,
        }) +
        readShellFile(path.join(__dirname, "..", "scripts", "server-count.sh"))
    );
}

export function serverCountJobSpec(
    settings: WorkloadSettings,
    names: ServerCountJobNames,
): k8s.types.input.batch.v1.JobSpec {
    const acl = names.aclSecret !== undefined;
    return {
        // One retry (a pod evicted or a node restarted); the script itself waits out slow servers.
        backoffLimit: 1,
        activeDeadlineSeconds: SERVER_COUNT_DEADLINE_SECONDS,
        template: {
            metadata: { labels: labels("server-count") },
            spec: {
                restartPolicy: "Never",
                securityContext: podSecurityContext(),
                automountServiceAccountToken: false,
                volumes: [
                    { name: "ca", configMap: { name: names.caConfigMap } },
                    ...(acl
                        ? [
                              {
                                  name: "acl",
                                  secret: {
                                      secretName: names.aclSecret,
                                      defaultMode: 0o440,
                                      items: [{ key: FILES.managementHeader, path: FILES.managementHeader }],
                                  },
                              },
                          ]
                        : []),
                ],
                containers: [
                    {
                        name: "server-count",
                        image: settings.kubernetes.image,
                        command: ["/bin/sh", "-c", serverCountScript(settings, acl)],
                        resources: {
                            requests: { cpu: "10m", memory: "32Mi" },
                            limits: { cpu: "100m", memory: "64Mi" },
                        },
                        securityContext: containerSecurityContext(),
                        volumeMounts: [
                            { name: "ca", mountPath: MOUNTS.ca, readOnly: true },
                            ...(acl ? [{ name: "acl", mountPath: MOUNTS.acl, readOnly: true }] : []),
                        ],
                    },
                ],
            },
        },
    };
}
