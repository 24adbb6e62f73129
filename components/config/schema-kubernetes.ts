// The Kubernetes topology's stack config keys (and hybrid's client agents). Part of the one table
// of keys, which ./schema.ts composes.

import type { ConfigKeySpec } from "./schema-types";

export const kubernetesKeys = {
    // --- Kubernetes ------------------------------------------------------------------------
    k8sNamespace: {
        type: "string",
        default: "consul",
        description:
            "Namespace of the servers, the ACL and server-count Jobs and their objects; Pod Security enforces restricted there.",
    },
    k8sClientNamespace: {
        type: "string",
        default: "",
        description:
            "Namespace of the client agent DaemonSet and its objects, where Pod Security enforces privileged (hostNetwork, hostPath) and warns and audits at restricted; empty means <k8sNamespace>-clients.",
    },
    k8sCreateNamespace: {
        type: "boolean",
        default: true,
        description: "Create both namespaces with their Pod Security labels; false expects them to exist.",
    },
    k8sKubeconfig: {
        type: "string",
        default: "",
        description: "Path to a kubeconfig file; empty uses the ambient kubeconfig.",
    },
    k8sContext: { type: "string", default: "", description: "kubeconfig context; empty uses the current one." },
    image: {
        type: "string",
        default: "",
        description: "Consul container image; empty means hashicorp/consul:<consulVersion>.",
    },
    storageClass: {
        type: "string",
        default: "",
        description: "StorageClass of the server volumes (e.g. a GlusterFS class); empty uses the default class.",
    },
    storageSize: { type: "string", default: "10Gi", description: "Size of each server's data volume." },
    pvcRetentionWhenDeleted: {
        type: "string",
        default: "Retain",
        description: "StatefulSet PVC retention when the StatefulSet is deleted: Retain or Delete.",
    },
    pvcRetentionWhenScaled: {
        type: "string",
        default: "Retain",
        description: "StatefulSet PVC retention when it is scaled down: Retain or Delete.",
    },
    antiAffinity: {
        type: "string",
        default: "required",
        description: "Server pod anti-affinity by node: required (production) or preferred (one-node clusters).",
    },
    uiServiceType: {
        type: "string",
        default: "ClusterIP",
        description: "Type of the UI/API Service: ClusterIP, NodePort or LoadBalancer.",
    },
    updatePartition: {
        type: "integer",
        default: 0,
        description:
            "StatefulSet rollingUpdate partition, for staged server upgrades (0 rolls every server). Above 0, pulumi up does not wait for the servers to roll: docs/runbooks/upgrade.md waits with kubectl rollout status.",
    },
    serverCpuRequest: { type: "string", default: "500m", description: "Server container CPU request." },
    serverCpuLimit: { type: "string", default: "500m", description: "Server container CPU limit." },
    serverMemoryRequest: { type: "string", default: "512Mi", description: "Server container memory request." },
    serverMemoryLimit: { type: "string", default: "512Mi", description: "Server container memory limit." },
    clientCpuRequest: { type: "string", default: "100m", description: "Client container CPU request." },
    clientCpuLimit: { type: "string", default: "100m", description: "Client container CPU limit." },
    clientMemoryRequest: { type: "string", default: "128Mi", description: "Client container memory request." },
    clientMemoryLimit: { type: "string", default: "128Mi", description: "Client container memory limit." },
    clientsEnabled: {
        type: "boolean",
        default: true,
        description: "Run client agents as a DaemonSet (kubernetes and hybrid topologies).",
    },
    clientNetworkMode: {
        type: "string",
        default: "hostNetwork",
        description:
            "How client agents reach the node network: hostNetwork (seed 003) or hostPort (needs CNI support).",
    },
    clientDataHostPath: {
        type: "string",
        default: "/var/lib/consul-client",
        description: "Host directory that keeps each client agent's data (and node ID) across pod restarts.",
    },
    clientTolerateAll: {
        type: "boolean",
        default: true,
        description: "Tolerate every taint so a client agent runs on every node.",
    },
    k8sAppNamespaces: {
        type: "array",
        default: [],
        description:
            "Namespaces of applications that talk to Consul; each gets a consul-ca ConfigMap with the cluster CA (not a secret).",
    },
    clientSelfRegister: {
        type: "boolean",
        default: true,
        description:
            "Register each client agent (DaemonSet pods and clientHosts) as a monitored service, consul-client (seed 003's postStart script, declaratively); Prometheus finds the clients through it.",
    },
} as const satisfies Record<string, ConfigKeySpec>;
