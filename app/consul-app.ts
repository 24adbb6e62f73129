// What an application stack needs to talk to its node-local Consul agent securely, from the Consul
// stack's outputs (read through a StackReference). Kubernetes apps get env vars and the CA volume;
// VM apps get environment settings. The pure functions take resolved outputs so they can be tested
// without an engine; the StackReference wrappers only resolve the outputs.

import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CA_CONFIGMAP_NAME } from "../components/agent";

type EnvVar = k8s.types.input.core.v1.EnvVar;
type Volume = k8s.types.input.core.v1.Volume;
type VolumeMount = k8s.types.input.core.v1.VolumeMount;

/** The key holding the CA certificate in the consul-ca ConfigMap (FILES.caCert in components/kubernetes/manifests/common.ts). */
export const CA_CONFIGMAP_KEY = "ca.crt";
/** Where the app's container sees the CA; any path works, this one is the helper's default. */
export const CA_MOUNT_PATH = "/etc/consul-ca";
export const CA_VOLUME_NAME = "consul-ca";

/** The Consul stack outputs the helper reads (see the Consul project's index.ts). */
export interface ConsulStackOutputs {
    readonly topology: string;
    /** Kubernetes: `https://$(HOST_IP):8501`; VMs: `https://127.0.0.1:8501`. */
    readonly consulHttpAddr: string;
    /** Kubernetes and hybrid: `client.<dc>.<domain>`; empty on vm. */
    readonly consulTlsServerName: string;
    /** vm only: the CLI environment per host role. */
    readonly cliEnvironment?: { readonly onClients?: Readonly<Record<string, string>> };
}

export interface KubernetesConsulAccess {
    /** Container env, HOST_IP first: CONSUL_HTTP_ADDR refers to it as $(HOST_IP). */
    readonly env: pulumi.Output<EnvVar[]>;
    /** Add to the pod's volumes: the consul-ca ConfigMap of the app's namespace. */
    readonly volume: Volume;
    /** Add to the container's volumeMounts. */
    readonly volumeMount: VolumeMount;
}

/** Pure: the env vars a Kubernetes container needs, from resolved outputs. */
export function kubernetesAppEnv(outputs: ConsulStackOutputs, caMountPath = CA_MOUNT_PATH): EnvVar[] {
    if (outputs.topology !== "kubernetes" && outputs.topology !== "hybrid") {
        throw new Error(
            `the Consul stack's topology is "${outputs.topology}": it runs no agents on Kubernetes, so a pod has no node-local agent; use vmAppEnvironment on the VM hosts instead`,
        );
    }
    if (!outputs.consulHttpAddr.includes("$(HOST_IP)") || !outputs.consulTlsServerName) {
        throw new Error("the Consul stack's consulHttpAddr/consulTlsServerName outputs are not the Kubernetes ones");
    }
    return [
        // The node's IP: client agents listen on the node network (hostNetwork or hostPort).
        { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "CONSUL_HTTP_ADDR", value: outputs.consulHttpAddr },
        { name: "CONSUL_CACERT", value: `${caMountPath}/${CA_CONFIGMAP_KEY}` },
        // The agent's HTTPS certificate names client.<dc>.<domain>, not the node IP.
        { name: "CONSUL_TLS_SERVER_NAME", value: outputs.consulTlsServerName },
    ];
}

/**
 * For a Deployment (or any pod template) in a namespace listed in the Consul stack's
 * consul:k8sAppNamespaces, which is where the consul-ca ConfigMap is created.
 */
export function kubernetesConsulAccess(
    consulStack: pulumi.StackReference,
    caMountPath = CA_MOUNT_PATH,
): KubernetesConsulAccess {
    return {
        env: stackOutputs(consulStack).apply((outputs) => kubernetesAppEnv(outputs, caMountPath)),
        volume: {
            name: CA_VOLUME_NAME,
            configMap: { name: CA_CONFIGMAP_NAME, items: [{ key: CA_CONFIGMAP_KEY, path: CA_CONFIGMAP_KEY }] },
        },
        volumeMount: { name: CA_VOLUME_NAME, mountPath: caMountPath, readOnly: true },
    };
}

/**
 * Pure: the environment of an app on a VM client host: the local agent and the CA bundle the
 * host already has (our CA plus Consul's Connect roots, which sign the agent's auto_encrypt cert).
 */
export function vmAppEnvironment(outputs: ConsulStackOutputs): Record<string, string> {
    const env = outputs.cliEnvironment?.onClients;
    if (outputs.topology !== "vm" || !env?.CONSUL_HTTP_ADDR || !env.CONSUL_CACERT) {
        throw new Error(
            `the Consul stack's topology is "${outputs.topology}": VM client hosts exist only in the vm topology`,
        );
    }
    return { CONSUL_HTTP_ADDR: env.CONSUL_HTTP_ADDR, CONSUL_CACERT: env.CONSUL_CACERT };
}

export function vmConsulEnvironment(consulStack: pulumi.StackReference): pulumi.Output<Record<string, string>> {
    return stackOutputs(consulStack).apply(vmAppEnvironment);
}

/** A systemd EnvironmentFile (or docker --env-file) body; values here never need quoting. */
export function renderEnvironmentFile(env: Readonly<Record<string, string>>): string {
    return Object.entries(env)
        .map(([name, value]) => {
            if (/[\s"'\\$]/.test(value)) throw new Error(`${name}: unexpected character in ${JSON.stringify(value)}`);
            return `${name}=${value}\n`;
        })
        .join("");
}

function stackOutputs(ref: pulumi.StackReference): pulumi.Output<ConsulStackOutputs> {
    return pulumi
        .all([
            ref.getOutput("topology"),
            ref.getOutput("consulHttpAddr"),
            ref.getOutput("consulTlsServerName"),
            ref.getOutput("cliEnvironment"),
        ])
        .apply(([topology, consulHttpAddr, consulTlsServerName, cliEnvironment]) => ({
            topology: String(topology),
            consulHttpAddr: String(consulHttpAddr),
            consulTlsServerName: typeof consulTlsServerName === "string" ? consulTlsServerName : "",
            cliEnvironment: cliEnvironment as ConsulStackOutputs["cliEnvironment"],
        }));
}
