// Pod pieces both agent workloads use: security contexts, ports, probes, mounts, resources.

import * as k8s from "@pulumi/kubernetes";
import { Ports, Resources } from "../../config";
import { dataDirOwnerScript, leaderProbeScript } from "../scripts";
import { CONSUL_GID, CONSUL_UID, MOUNTS } from "./common";

type ContainerPort = k8s.types.input.core.v1.ContainerPort;
type EnvVar = k8s.types.input.core.v1.EnvVar;
type ServicePort = k8s.types.input.core.v1.ServicePort;

export function resources(r: Resources): k8s.types.input.core.v1.ResourceRequirements {
    return {
        requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
        limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
    };
}

export function fieldEnv(name: string, fieldPath: string): EnvVar {
    return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/** Restricted pod security: non-root consul user, RuntimeDefault seccomp, group-owned volumes. */
export function podSecurityContext(): k8s.types.input.core.v1.PodSecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: CONSUL_UID,
        runAsGroup: CONSUL_GID,
        fsGroup: CONSUL_GID,
        seccompProfile: { type: "RuntimeDefault" },
    };
}

export function containerSecurityContext(): k8s.types.input.core.v1.SecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: CONSUL_UID,
        runAsGroup: CONSUL_GID,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
    };
}

export function readinessProbe(ports: Ports, caFile: string): k8s.types.input.core.v1.Probe {
    return {
        exec: { command: ["/bin/sh", "-ec", leaderProbeScript(ports.https, caFile)] },
        initialDelaySeconds: 5,
        periodSeconds: 5,
        timeoutSeconds: 5,
        failureThreshold: 2,
        successThreshold: 1,
    };
}

export interface PortSpec {
    readonly name: string;
    readonly port: number;
    readonly protocol: "TCP" | "UDP";
}

/** Every port an agent listens on; serverRpc and serf WAN only for servers. */
export function agentPorts(ports: Ports, role: "server" | "client"): PortSpec[] {
    const list: PortSpec[] = [];
    if (role === "server") list.push({ name: "server", port: ports.serverRpc, protocol: "TCP" });
    list.push(
        { name: "serflan-tcp", port: ports.serfLan, protocol: "TCP" },
        { name: "serflan-udp", port: ports.serfLan, protocol: "UDP" },
    );
    if (role === "server") {
        list.push(
            { name: "serfwan-tcp", port: ports.serfWan, protocol: "TCP" },
            { name: "serfwan-udp", port: ports.serfWan, protocol: "UDP" },
        );
    }
    list.push({ name: "https", port: ports.https, protocol: "TCP" });
    if (ports.http !== -1) list.push({ name: "http", port: ports.http, protocol: "TCP" });
    list.push({ name: "grpc-tls", port: ports.grpcTls, protocol: "TCP" });
    if (ports.dns !== -1) {
        list.push(
            { name: "dns-tcp", port: ports.dns, protocol: "TCP" },
            { name: "dns-udp", port: ports.dns, protocol: "UDP" },
        );
    }
    return list;
}

export function containerPorts(specs: PortSpec[], hostPort: boolean): ContainerPort[] {
    return specs.map((p) => ({
        name: p.name,
        containerPort: p.port,
        protocol: p.protocol,
        ...(hostPort ? { hostPort: p.port } : {}),
    }));
}

export function servicePorts(specs: PortSpec[]): ServicePort[] {
    return specs.map((p) => ({ name: p.name, port: p.port, targetPort: p.port, protocol: p.protocol }));
}

/**
 * Root with CAP_CHOWN alone: hand the hostPath data dir to the consul user before it starts. The
 * one part of the client pod below `restricted` that is not seed 003's design, and it cannot go:
 * the kubelet creates a hostPath dir root:root and applies no fsGroup to it, and a non-root
 * container gets no effective capabilities to chown with.
 */
export function dataDirInitContainer(image: string): k8s.types.input.core.v1.Container {
    return {
        name: "data-dir-owner",
        image,
        command: ["/bin/sh", "-ec", dataDirOwnerScript(MOUNTS.data, CONSUL_UID, CONSUL_GID)],
        securityContext: {
            runAsUser: 0,
            runAsNonRoot: false,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"], add: ["CHOWN"] },
            seccompProfile: { type: "RuntimeDefault" },
        },
        resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "50m", memory: "32Mi" } },
        volumeMounts: [{ name: "data", mountPath: MOUNTS.data }],
    };
}

/** The mounts every agent container has (data, config, secret fragment, TLS, tmp), with the role's own between. */
export function agentVolumeMounts(
    roleMounts: k8s.types.input.core.v1.VolumeMount[],
): k8s.types.input.core.v1.VolumeMount[] {
    return [
        { name: "data", mountPath: MOUNTS.data },
        { name: "config", mountPath: MOUNTS.config, readOnly: true },
        { name: "secret-config", mountPath: MOUNTS.secretConfig, readOnly: true },
        { name: "tls", mountPath: MOUNTS.tls, readOnly: true },
        ...roleMounts,
        { name: "tmp", mountPath: MOUNTS.tmp },
    ];
}
