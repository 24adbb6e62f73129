// The server StatefulSet, its headless and UI Services and its PodDisruptionBudget.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesSettings, Ports } from "../../config";
import {
    agentConfigFiles,
    CHECKSUM_ANNOTATION,
    FILES,
    labels,
    MOUNTS,
    selectorLabels,
    SKIP_AWAIT_ANNOTATION,
    WorkloadSettings,
} from "./common";
import {
    agentPorts,
    agentVolumeMounts,
    containerPorts,
    containerSecurityContext,
    fieldEnv,
    podSecurityContext,
    readinessProbe,
    resources,
    servicePorts,
} from "./pod";

export interface ServerObjectNames {
    readonly configMap: pulumi.Input<string>;
    readonly secretConfig: pulumi.Input<string>;
    readonly tlsSecret: pulumi.Input<string>;
    readonly headlessService: pulumi.Input<string>;
}

export function serverAntiAffinity(mode: "required" | "preferred"): k8s.types.input.core.v1.Affinity {
    const term = { labelSelector: { matchLabels: selectorLabels("server") }, topologyKey: "kubernetes.io/hostname" };
    return {
        podAntiAffinity:
            mode === "required"
                ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
                : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] },
    };
}

export function serverStatefulSetSpec(
    settings: WorkloadSettings,
    names: ServerObjectNames,
    checksum: pulumi.Input<string>,
): k8s.types.input.apps.v1.StatefulSetSpec {
    const kube = settings.kubernetes;
    const podSpec: k8s.types.input.core.v1.PodSpec = {
        affinity: serverAntiAffinity(kube.antiAffinity),
        // Servers do not leave (see kubernetesServerConfig), so a stop is just a clean shutdown.
        terminationGracePeriodSeconds: 30,
        securityContext: podSecurityContext(),
        automountServiceAccountToken: false,
        volumes: [
            { name: "config", configMap: { name: names.configMap } },
            { name: "secret-config", secret: { secretName: names.secretConfig, defaultMode: 0o440 } },
            { name: "tls", secret: { secretName: names.tlsSecret, defaultMode: 0o440 } },
            { name: "tmp", emptyDir: {} },
        ],
        containers: [
            {
                name: "consul",
                image: kube.image,
                command: ["consul"],
                args: [
                    "agent",
                    ...agentConfigFiles(FILES.serverConfig).map((f) => `-config-file=${f}`),
                    "-advertise=$(POD_IP)",
                    "-bind=0.0.0.0",
                    "-node=$(POD_NAME)",
                ],
                env: [
                    fieldEnv("POD_IP", "status.podIP"),
                    fieldEnv("POD_NAME", "metadata.name"),
                    fieldEnv("NAMESPACE", "metadata.namespace"),
                    // For `kubectl exec ... consul members`; not secret.
                    { name: "CONSUL_HTTP_ADDR", value: `https://127.0.0.1:${settings.ports.https}` },
                    { name: "CONSUL_CACERT", value: `${MOUNTS.tls}/${FILES.caCert}` },
                ],
                ports: containerPorts(agentPorts(settings.ports, "server"), false),
                readinessProbe: readinessProbe(settings.ports, `${MOUNTS.tls}/${FILES.caCert}`),
                resources: resources(kube.serverResources),
                securityContext: containerSecurityContext(),
                volumeMounts: agentVolumeMounts([]),
            },
        ],
    };
    return {
        replicas: settings.serverCount,
        podManagementPolicy: "Parallel",
        serviceName: names.headlessService,
        selector: { matchLabels: selectorLabels("server") },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: kube.updatePartition } },
        persistentVolumeClaimRetentionPolicy: {
            whenDeleted: kube.pvcRetentionWhenDeleted,
            whenScaled: kube.pvcRetentionWhenScaled,
        },
        template: {
            metadata: { labels: labels("server"), annotations: { [CHECKSUM_ANNOTATION]: checksum } },
            spec: podSpec,
        },
        volumeClaimTemplates: [
            {
                metadata: { name: "data", labels: labels("server") },
                spec: {
                    accessModes: ["ReadWriteOnce"],
                    resources: { requests: { storage: kube.storageSize } },
                    ...(kube.storageClass ? { storageClassName: kube.storageClass } : {}),
                },
            },
        ],
    };
}

/** Headless: DNS for every server pod, ready or not, so the servers can find each other to bootstrap. */
export function serverHeadlessServiceSpec(ports: Ports): k8s.types.input.core.v1.ServiceSpec {
    return {
        clusterIP: "None",
        publishNotReadyAddresses: true,
        selector: selectorLabels("server"),
        ports: servicePorts(agentPorts(ports, "server")),
    };
}

/** The consul-ui Service's port, the HTTPS default, in front of the servers' HTTPS port. */
export const UI_SERVICE_PORT = 443;

export function uiServiceSpec(settings: WorkloadSettings): k8s.types.input.core.v1.ServiceSpec {
    return {
        type: settings.kubernetes.uiServiceType,
        selector: selectorLabels("server"),
        ports: [{ name: "https", port: UI_SERVICE_PORT, targetPort: settings.ports.https, protocol: "TCP" }],
    };
}

/**
 * The StatefulSet's own annotations. A staged rollout (updatePartition above 0) never reaches
 * currentRevision == updateRevision, which the provider's StatefulSet wait requires (its await
 * has no partition case, v4.25 to its main branch), so `pulumi up` would hang until its timeout:
 * the wait is skipped while a partition holds pods back, and docs/runbooks/upgrade.md waits with
 * `kubectl rollout status`, which understands partitions. At 0 the provider waits for the rollout.
 */
export function serverStatefulSetAnnotations(
    kube: Pick<KubernetesSettings, "updatePartition">,
): Record<string, string> {
    return kube.updatePartition > 0 ? { [SKIP_AWAIT_ANNOTATION]: "true" } : {};
}

/** One server at a time may be evicted; none when there is only one. */
export function serverPdbSpec(serverCount: number): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { maxUnavailable: serverCount === 1 ? 0 : 1, selector: { matchLabels: selectorLabels("server") } };
}
