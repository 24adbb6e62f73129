// A real one-node Kubernetes on a systemd-nspawn host (scripts/e2e/hosts.sh HOSTS_K8S_NODES), as
// kind runs one in a container: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// containerd (Debian's), the kubelet and CoreDNS as systemd units in the node, the images built
// here imported into containerd. The binaries come from scripts/k8s/build-control-plane.sh --node
// and the images from scripts/k8s/images.sh; a missing one fails the suite, it never skips.

import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../mocks";
import { Hosts } from "../e2e/hosts";
import { CGROUPS_SCRIPT, CLUSTER, nodeFiles, nodeUnits } from "./node-files";
import { CLIENTS, kubeconfig, makeClusterPki } from "./pki";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function log(message: string): void {
    process.stdout.write(`      [k8s-real ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

/** Runs one of our build scripts; its last stdout lines are the paths it made. Throws on failure. */
function buildScript(script: string, args: string[], what: string): string[] {
    const run = childProcess.spawnSync("bash", [path.join(REPO_ROOT, script), ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 16 * 1024 * 1024,
    });
    const paths = run.stdout
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("/"));
    if (run.status !== 0 || paths.some((p) => !fs.existsSync(p)))
        throw new Error(`${script} ${args.join(" ")} could not provide ${what} (exit ${run.status})`);
    return paths;
}

/**
 * A directory holding every binary the node runs, hard links to the cached builds (hosts.sh binds
 * it read-only into the node, where links out of it would not resolve).
 */
export function nodeBinaries(dir: string): { dir: string; kubectl: string } {
    const paths = buildScript("scripts/k8s/build-control-plane.sh", ["--node"], "the node's binaries");
    fs.mkdirSync(dir, { recursive: true });
    for (const p of paths) {
        const target = path.join(dir, path.basename(p));
        try {
            fs.linkSync(p, target);
        } catch {
            fs.copyFileSync(p, target);
            fs.chmodSync(target, 0o755);
        }
    }
    for (const name of [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kubectl",
        "coredns",
    ])
        if (!fs.existsSync(path.join(dir, name))) throw new Error(`build-control-plane.sh --node gave no ${name}`);
    return { dir, kubectl: path.join(dir, "kubectl") };
}

/** The image archives (pause, then Consul at each version given), from scripts/k8s/images.sh. */
export function imageArchives(consulVersions: readonly string[]): string[] {
    return buildScript("scripts/k8s/images.sh", [...consulVersions], "the container images");
}

/** Kernel settings the kubelet insists on (it cannot set them from inside the node): set, then put back. */
const KUBELET_SYSCTLS: Record<string, string> = {
    "vm.overcommit_memory": "1",
    "kernel.panic": "10",
    "kernel.panic_on_oops": "1",
};

function sysctl(name: string, value?: string): string {
    const file = `/proc/sys/${name.replace(/\./g, "/")}`;
    if (value !== undefined) fs.writeFileSync(file, value);
    return fs.readFileSync(file, "utf8").trim();
}

export class KubeNode {
    private savedSysctls: Record<string, string> = {};
    /** The admin kubeconfig on this machine (for kubectl and the Pulumi provider). */
    readonly kubeconfigPath: string;
    private constructor(
        readonly hosts: Hosts,
        readonly index: number,
        readonly name: string,
        readonly address: string,
        readonly kubectlBin: string,
        readonly workDir: string,
    ) {
        this.kubeconfigPath = path.join(workDir, "admin.kubeconfig");
    }

    /** Sets the node up on host `index` of `hosts` (booted with it in k8sNodes) and waits until it is Ready. */
    static async start(
        hosts: Hosts,
        index: number,
        kubectl: string,
        images: readonly string[],
        workDir: string,
    ): Promise<KubeNode> {
        const host = hosts.hosts[index - 1];
        const node = new KubeNode(hosts, index, host.name, host.address, kubectl, workDir);
        try {
            await node.setUp(images);
        } catch (err) {
            // The caller never gets the node to restore: put the kernel settings back here.
            node.restore();
            throw err;
        }
        return node;
    }

    private async setUp(images: readonly string[]): Promise<void> {
        const started = Date.now();
        const pkiDir = path.join(this.workDir, "pki");
        makeClusterPki(pkiDir, this.name, this.address, CLUSTER.kubernetesServiceIp);
        const pkiFiles = Object.fromEntries(
            fs.readdirSync(pkiDir).map((f) => [f, fs.readFileSync(path.join(pkiDir, f), "utf8")]),
        );
        const root = this.hosts.root(this.index);
        const put = (file: string, content: string | Buffer, mode: number) => {
            const target = path.join(root, file);
            fs.mkdirSync(path.dirname(target), { recursive: true });
            fs.writeFileSync(target, content, { mode });
            fs.chmodSync(target, mode);
        };
        for (const f of nodeFiles(this.name, this.address, pkiFiles)) put(f.path, f.content, f.mode);
        put(CGROUPS_SCRIPT, fs.readFileSync(path.join(REPO_ROOT, "scripts/k8s/node/cgroups-rw.sh")), 0o755);
        fs.writeFileSync(
            this.kubeconfigPath,
            kubeconfig(`https://${this.address}:${CLUSTER.apiPort}`, CLIENTS.admin, pkiDir),
            { mode: 0o600 },
        );
        for (const [name, value] of Object.entries(KUBELET_SYSCTLS)) {
            this.savedSysctls[name] = sysctl(name);
            sysctl(name, value);
        }
        const units = Object.keys(nodeUnits(this.name, this.address));
        await this.hosts.run(
            this.index,
            "systemctl daemon-reload && systemctl start k8s-cgroups.service && systemctl restart containerd.service",
        );
        for (const unit of units.filter((u) => u !== "k8s-cgroups.service"))
            await this.hosts.run(this.index, `systemctl enable --now ${unit}`);
        for (const image of images) {
            put(`/var/tmp/images/${path.basename(image)}`, fs.readFileSync(image), 0o644);
            await this.hosts.run(
                this.index,
                `ctr -n k8s.io images import /var/tmp/images/${path.basename(image)} && rm /var/tmp/images/${path.basename(image)}`,
                {
                    timeoutMs: 300_000,
                },
            );
        }
        await this.waitReady(180_000);
        // The scenarios install 3 servers three times (the dev stack, the upgrade's stack, a reinstall
        // after destroy), and a Retain policy keeps each claim's volume: 12 leave room for a scale to 5.
        const volumes = localVolumes(this.name, 12);
        await this.hosts.run(this.index, `mkdir -p ${volumes.map((v) => v.spec.local.path).join(" ")}`);
        this.apply([...CLUSTER_OBJECTS, ...volumes]);
        log(`node ${this.name} Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }

    /** kubectl with the admin kubeconfig; throws with its output on a non-zero exit. */
    kubectl(args: string[], input?: string, timeoutMs = 120_000): string {
        const run = childProcess.spawnSync(this.kubectlBin, ["--kubeconfig", this.kubeconfigPath, ...args], {
            encoding: "utf8",
            input,
            timeout: timeoutMs,
            maxBuffer: 64 * 1024 * 1024,
        });
        if (run.status !== 0)
            throw new Error(`kubectl ${args.join(" ")} exited ${run.status}: ${run.stdout}${run.stderr}`);
        return run.stdout;
    }

    /** kubectl apply of these objects as one List. */
    apply(manifests: readonly object[]): string {
        return this.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: manifests }));
    }

    private async waitReady(timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        let last = "";
        for (;;) {
            try {
                const nodeJson = JSON.parse(
                    this.kubectl(["get", "node", this.name, "-o", "json"], undefined, 10_000),
                ) as {
                    status?: { conditions?: { type: string; status: string; message?: string }[] };
                };
                const ready = nodeJson.status?.conditions?.find((c) => c.type === "Ready");
                if (ready?.status === "True") return;
                last = `Ready ${ready?.status}: ${ready?.message ?? ""}`;
            } catch (err) {
                last = (err as Error).message;
            }
            if (Date.now() > deadline) {
                const journal = await this.hosts.exec(
                    this.index,
                    "journalctl -u kubelet -u kube-apiserver -u containerd --no-pager -n 60",
                );
                throw new Error(`node ${this.name} not Ready in ${timeoutMs / 1000} s (${last}):\n${journal.stdout}`);
            }
            await sleep(1000);
        }
    }

    /** Puts back the kernel settings; the hosts themselves go with hosts.down(). */
    restore(): void {
        for (const [name, value] of Object.entries(this.savedSysctls)) sysctl(name, value);
        this.savedSysctls = {};
    }
}

const LOCAL_STORAGE_CLASS = "standard";
const LOCAL_VOLUME_DIR = "/var/lib/local-volumes";

/** `count` local PersistentVolumes of 1 Gi on the node, each a directory of its own. */
function localVolumes(nodeName: string, count: number): { spec: { local: { path: string } } }[] {
    return Array.from({ length: count }, (_, k) => ({
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: `local-${k + 1}` },
        spec: {
            capacity: { storage: "1Gi" },
            accessModes: ["ReadWriteOnce"],
            persistentVolumeReclaimPolicy: "Retain",
            storageClassName: LOCAL_STORAGE_CLASS,
            local: { path: `${LOCAL_VOLUME_DIR}/local-${k + 1}` },
            nodeAffinity: {
                required: {
                    nodeSelectorTerms: [
                        { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [nodeName] }] },
                    ],
                },
            },
        },
    }));
}

/** What a cluster has before anything of ours: CoreDNS's read access, and a default StorageClass. */
const CLUSTER_OBJECTS: readonly object[] = [
    {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: "system:coredns" },
        rules: [
            { apiGroups: [""], resources: ["endpoints", "services", "pods", "namespaces"], verbs: ["list", "watch"] },
            { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
        ],
    },
    {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "system:coredns" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:coredns" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "system:coredns" }],
    },
    // Local volumes, made ahead (localVolumes): unlike a hostPath one, the kubelet gives a local
    // volume the pod's fsGroup, as a cloud disk gets it, so the non-root agents can write their data.
    {
        apiVersion: "storage.k8s.io/v1",
        kind: "StorageClass",
        metadata: { name: LOCAL_STORAGE_CLASS, annotations: { "storageclass.kubernetes.io/is-default-class": "true" } },
        provisioner: "kubernetes.io/no-provisioner",
        reclaimPolicy: "Retain",
        volumeBindingMode: "WaitForFirstConsumer",
    },
];
