// The client agents' DaemonSet: one agent per node, on the host network by default.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { clientStartScript } from "../scripts";
import {
    agentConfigFiles,
    CHECKSUM_ANNOTATION,
    FILES,
    labels,
    MOUNTS,
    selectorLabels,
    WorkloadSettings,
} from "./common";
import {
    agentPorts,
    agentVolumeMounts,
    containerPorts,
    containerSecurityContext,
    dataDirInitContainer,
    fieldEnv,
    podSecurityContext,
    readinessProbe,
    resources,
} from "./pod";

export interface ClientObjectNames {
    readonly configMap: pulumi.Input<string>;
    readonly secretConfig: pulumi.Input<string>;
    readonly httpsSecret: pulumi.Input<string>;
    readonly caConfigMap: pulumi.Input<string>;
}

export function clientPrometheusAnnotations(settings: WorkloadSettings): Record<string, string> {
    if (!settings.telemetry.enabled) return {};
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/scheme": "https",
        "prometheus.io/path": "/v1/agent/metrics",
        "prometheus.io/port": String(settings.ports.https),
    };
}

export function clientDaemonSetSpec(
    settings: WorkloadSettings,
    names: ClientObjectNames,
    checksum: pulumi.Input<string>,
): k8s.types.input.apps.v1.DaemonSetSpec {
    const kube = settings.kubernetes;
    const hostNetwork = kube.clientNetworkMode === "hostNetwork";
    const caFile = `${MOUNTS.ca}/${FILES.caCert}`;
    const podSpec: k8s.types.input.core.v1.PodSpec = {
        hostNetwork,
        // With hostNetwork, ClusterFirst would silently fall back to the node's resolver.
        dnsPolicy: hostNetwork ? "ClusterFirstWithHostNet" : "ClusterFirst",
        // leave_on_terminate: SIGTERM makes the agent leave the cluster gracefully (seed 003's
        // preStop `consul leave`, without needing a token in a hook).
        terminationGracePeriodSeconds: 30,
        securityContext: podSecurityContext(),
        automountServiceAccountToken: false,
        ...(kube.clientTolerateAll ? { tolerations: [{ operator: "Exists" }] } : {}),
        volumes: [
            { name: "config", configMap: { name: names.configMap } },
            { name: "secret-config", secret: { secretName: names.secretConfig, defaultMode: 0o440 } },
            { name: "tls", secret: { secretName: names.httpsSecret, defaultMode: 0o440 } },
            { name: "ca", configMap: { name: names.caConfigMap } },
            // The node ID lives here: a restarted pod on the same node is the same Consul node.
            { name: "data", hostPath: { path: kube.clientDataHostPath, type: "DirectoryOrCreate" } },
            { name: "extra", emptyDir: {} },
            { name: "tmp", emptyDir: {} },
        ],
        initContainers: [dataDirInitContainer(kube.image)],
        containers: [
            {
                name: "consul",
                image: kube.image,
                command: [
                    "/bin/sh",
                    "-ec",
                    clientStartScript({
                        configFiles: agentConfigFiles(FILES.clientConfig),
                        addressConfigFile: `${MOUNTS.extra}/${FILES.addressConfig}`,
                        dataDir: MOUNTS.data,
                        secretConfigFile: `${MOUNTS.secretConfig}/${FILES.secretConfig}`,
                    }),
                ],
                env: [
                    fieldEnv("NODE_NAME", "spec.nodeName"),
                    fieldEnv("HOST_IP", "status.hostIP"),
                    fieldEnv("POD_IP", "status.podIP"),
                    { name: "CONSUL_HTTP_ADDR", value: `https://127.0.0.1:${settings.ports.https}` },
                    { name: "CONSUL_CACERT", value: caFile },
                ],
                ports: containerPorts(agentPorts(settings.ports, "client"), !hostNetwork),
                readinessProbe: readinessProbe(settings.ports, caFile),
                resources: resources(kube.clientResources),
                securityContext: containerSecurityContext(),
                volumeMounts: agentVolumeMounts([
                    { name: "ca", mountPath: MOUNTS.ca, readOnly: true },
                    { name: "extra", mountPath: MOUNTS.extra },
                ]),
            },
        ],
    };
    return {
        selector: { matchLabels: selectorLabels("client") },
        minReadySeconds: 10,
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
            metadata: {
                labels: labels("client"),
                annotations: { [CHECKSUM_ANNOTATION]: checksum, ...clientPrometheusAnnotations(settings) },
            },
            spec: podSpec,
        },
    };
}
