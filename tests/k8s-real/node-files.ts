// What the one-node cluster's node holds, rendered from typed objects: the systemd units of the
// control plane, containerd, the kubelet and CoreDNS, and their config files. node.ts writes them
// into the node's root and starts them.

import * as path from "path";
import { renderUnit, SystemdUnit } from "../../components/vm/systemd";
import { CLIENTS, kubeconfig, kubeletIdentity, NODE_PKI_DIR } from "./pki";

/** Where hosts.sh binds the binaries in a Kubernetes node (HOSTS_K8S_BIN). */
export const NODE_BIN_DIR = "/opt/k8s/bin";
/** The cluster's fixed addressing: Services, pods (one node, one CNI bridge), DNS domain. */
export const CLUSTER = {
    serviceCidr: "10.96.0.0/16",
    kubernetesServiceIp: "10.96.0.1",
    podCidr: "10.244.0.0/24",
    domain: "cluster.local",
    apiPort: 6443,
    // Kubernetes' own pause program, the sandbox image containerd is told to use (scripts/k8s/images.sh).
    pauseImage: "registry.k8s.io/pause:3.10",
} as const;

const pki = (name: string) => path.posix.join(NODE_PKI_DIR, name);
const bin = (name: string) => path.posix.join(NODE_BIN_DIR, name);
const KUBECONFIG_DIR = "/etc/kubernetes";
const kubeconfigFile = (name: string) => path.posix.join(KUBECONFIG_DIR, `${name}.kubeconfig`);
const CGROUPS_SCRIPT = "/usr/local/sbin/k8s-cgroups-rw";
const KUBELET_CONFIG = "/etc/kubernetes/kubelet.json";
const COREFILE = "/etc/coredns/Corefile";

export interface NodeFile {
    readonly path: string;
    readonly content: string;
    readonly mode: number;
}

/** Flags as one ExecStart line: every value here is ours and has no space. */
function exec(binary: string, flags: Record<string, string | number | boolean>): string {
    const args = Object.entries(flags).map(([k, v]) => `--${k}=${String(v)}`);
    for (const a of args) if (/\s/.test(a)) throw new Error(`${binary}: flag ${a} has white space`);
    return [bin(binary), ...args].join(" ");
}

function service(
    description: string,
    execStart: string,
    after: string[],
    extra: Record<string, string> = {},
): SystemdUnit {
    return {
        Unit: {
            Description: description,
            After: after.length ? after.join(" ") : undefined,
            Wants: after.length ? after.join(" ") : undefined,
        },
        Service: { ExecStart: execStart, Restart: "always", RestartSec: 2, ...extra },
        Install: { WantedBy: "multi-user.target" },
    };
}

/** The units by name, in the order node.ts starts them. */
export function nodeUnits(nodeName: string, address: string): Record<string, SystemdUnit> {
    const loopbackEtcd = "http://127.0.0.1:2379";
    return {
        "k8s-cgroups.service": {
            Unit: {
                Description: "cgroup controllers writable for the kubelet and runc",
                Before: "containerd.service kubelet.service",
            },
            Service: { Type: "oneshot", RemainAfterExit: true, ExecStart: CGROUPS_SCRIPT },
            Install: { WantedBy: "multi-user.target" },
        },
        // Plain HTTP on loopback: the API server is its only client, on the same node.
        "etcd.service": service(
            "etcd for the API server",
            exec("etcd", {
                name: nodeName,
                "data-dir": "/var/lib/etcd",
                "listen-client-urls": loopbackEtcd,
                "advertise-client-urls": loopbackEtcd,
                "listen-peer-urls": "http://127.0.0.1:2380",
                "initial-advertise-peer-urls": "http://127.0.0.1:2380",
                "initial-cluster": `${nodeName}=http://127.0.0.1:2380`,
            }),
            [],
        ),
        // Admission: the default plugins (PodSecurity among them) and NodeRestriction.
        "kube-apiserver.service": service(
            "Kubernetes API server",
            exec("kube-apiserver", {
                "etcd-servers": loopbackEtcd,
                "advertise-address": address,
                "secure-port": CLUSTER.apiPort,
                "tls-cert-file": pki("apiserver.crt"),
                "tls-private-key-file": pki("apiserver.key"),
                "client-ca-file": pki("ca.crt"),
                "authorization-mode": "Node,RBAC",
                "enable-admission-plugins": "NodeRestriction",
                "service-account-key-file": pki("sa.pub"),
                "service-account-signing-key-file": pki("sa.key"),
                "service-account-issuer": `https://kubernetes.default.svc.${CLUSTER.domain}`,
                "service-cluster-ip-range": CLUSTER.serviceCidr,
                "kubelet-client-certificate": pki(`${CLIENTS.apiserverKubelet.name}.crt`),
                "kubelet-client-key": pki(`${CLIENTS.apiserverKubelet.name}.key`),
                "kubelet-preferred-address-types": "InternalIP",
            }),
            ["etcd.service"],
        ),
        "kube-controller-manager.service": service(
            "Kubernetes controller manager",
            exec("kube-controller-manager", {
                kubeconfig: kubeconfigFile(CLIENTS.controllerManager.name),
                "authentication-kubeconfig": kubeconfigFile(CLIENTS.controllerManager.name),
                "authorization-kubeconfig": kubeconfigFile(CLIENTS.controllerManager.name),
                "service-account-private-key-file": pki("sa.key"),
                "root-ca-file": pki("ca.crt"),
                "cluster-signing-cert-file": pki("ca.crt"),
                "cluster-signing-key-file": pki("ca.key"),
                "use-service-account-credentials": true,
                "leader-elect": false,
            }),
            ["kube-apiserver.service"],
        ),
        "kube-scheduler.service": service(
            "Kubernetes scheduler",
            exec("kube-scheduler", {
                kubeconfig: kubeconfigFile(CLIENTS.scheduler.name),
                "authentication-kubeconfig": kubeconfigFile(CLIENTS.scheduler.name),
                "authorization-kubeconfig": kubeconfigFile(CLIENTS.scheduler.name),
                "leader-elect": false,
            }),
            ["kube-apiserver.service"],
        ),
        "kubelet.service": service(
            "Kubernetes node agent",
            exec("kubelet", {
                config: KUBELET_CONFIG,
                kubeconfig: kubeconfigFile(kubeletIdentity(nodeName).name),
                "node-ip": address,
            }),
            ["containerd.service", "k8s-cgroups.service", "kube-apiserver.service"],
        ),
        "coredns.service": service("Cluster DNS", `${bin("coredns")} -conf ${COREFILE}`, ["kube-apiserver.service"]),
    };
}

/** containerd 1.6's config (version 2): our sandbox image, Debian's CNI plugins, cgroupfs as the kubelet. */
function containerdConfig(): string {
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    const sections: [string, Record<string, string | boolean>][] = [
        // This machine's bounding set lacks CAP_SYS_RESOURCE, so no process here may lower an OOM
        // score below its own (the sandbox's -998 fails runc's init): as rootless nodes do, keep it.
        [cri, { sandbox_image: CLUSTER.pauseImage, restrict_oom_score_adj: true }],
        [`${cri}.cni`, { bin_dir: "/usr/lib/cni", conf_dir: "/etc/cni/net.d" }],
        [`${cri}.containerd.runtimes.runc`, { runtime_type: "io.containerd.runc.v2" }],
        [`${cri}.containerd.runtimes.runc.options`, { SystemdCgroup: false }],
    ];
    const value = (v: string | boolean) => (typeof v === "string" ? JSON.stringify(v) : String(v));
    return (
        [
            "version = 2",
            ...sections.map(([s, kv]) =>
                [`[${s}]`, ...Object.entries(kv).map(([k, v]) => `  ${k} = ${value(v)}`)].join("\n"),
            ),
        ].join("\n\n") + "\n"
    );
}

/** Every file node.ts writes into the node's root, keys and kubeconfigs root-only. */
export function nodeFiles(nodeName: string, address: string, pkiFiles: Record<string, string>): NodeFile[] {
    const server = `https://${address}:${CLUSTER.apiPort}`;
    const files: NodeFile[] = [];
    for (const [name, content] of Object.entries(pkiFiles))
        files.push({ path: pki(name), content, mode: name.endsWith(".key") ? 0o600 : 0o644 });
    for (const client of [CLIENTS.controllerManager, CLIENTS.scheduler, CLIENTS.coredns, kubeletIdentity(nodeName)])
        files.push({
            path: kubeconfigFile(client.name),
            content: kubeconfig(server, client, NODE_PKI_DIR),
            mode: 0o600,
        });
    for (const [name, unit] of Object.entries(nodeUnits(nodeName, address)))
        files.push({ path: `/etc/systemd/system/${name}`, content: renderUnit(unit), mode: 0o644 });
    files.push({ path: "/etc/containerd/config.toml", content: containerdConfig(), mode: 0o644 });
    files.push({
        path: "/etc/cni/net.d/10-bridge.conflist",
        content: JSON.stringify(
            {
                cniVersion: "0.4.0",
                name: "pods",
                plugins: [
                    {
                        type: "bridge",
                        bridge: "cni0",
                        isGateway: true,
                        ipMasq: false,
                        hairpinMode: true,
                        ipam: {
                            type: "host-local",
                            ranges: [[{ subnet: CLUSTER.podCidr }]],
                            routes: [{ dst: "0.0.0.0/0" }],
                        },
                    },
                    { type: "portmap", capabilities: { portMappings: true } },
                ],
            },
            null,
            2,
        ),
        mode: 0o644,
    });
    files.push({
        path: KUBELET_CONFIG,
        content: JSON.stringify(
            {
                apiVersion: "kubelet.config.k8s.io/v1beta1",
                kind: "KubeletConfiguration",
                authentication: {
                    x509: { clientCAFile: pki("ca.crt") },
                    webhook: { enabled: true },
                    anonymous: { enabled: false },
                },
                authorization: { mode: "Webhook" },
                cgroupDriver: "cgroupfs",
                // This machine is cgroup v1; 1.34's kubelet still runs there when told so.
                failCgroupV1: false,
                containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
                clusterDNS: [address],
                clusterDomain: CLUSTER.domain,
                failSwapOn: false,
                readOnlyPort: 0,
                // The node shares this machine's disk, which other suites fill and empty: no evictions.
                evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
                imageGCHighThresholdPercent: 100,
                imageGCLowThresholdPercent: 99,
            },
            null,
            2,
        ),
        mode: 0o644,
    });
    // CoreDNS on the node's address, answering for the cluster domain from the API server.
    files.push({
        path: COREFILE,
        content: [
            `.:53 {`,
            `    bind ${address}`,
            `    errors`,
            `    kubernetes ${CLUSTER.domain} in-addr.arpa ip6.arpa {`,
            `        kubeconfig ${kubeconfigFile(CLIENTS.coredns.name)} k8s-real`,
            `        pods insecure`,
            `        fallthrough in-addr.arpa ip6.arpa`,
            `    }`,
            `    cache 5`,
            `}`,
            ``,
        ].join("\n"),
        mode: 0o644,
    });
    return files;
}

export { CGROUPS_SCRIPT };
