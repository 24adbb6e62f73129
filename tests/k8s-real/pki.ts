// The one-node cluster's certificates and kubeconfigs, made with openssl on this machine and
// copied into the node: a throw-away CA (one day), the API server's serving certificate, a client
// certificate per component with the identity Kubernetes' default RBAC expects of it, and the
// service-account key pair.

import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";

/** Where the node keeps them (the units and kubeconfigs name these paths). */
export const NODE_PKI_DIR = "/etc/kubernetes/pki";

/** A client identity: its file name, and the subject Kubernetes reads user and groups from. */
interface ClientIdentity {
    readonly name: string;
    readonly subject: string;
}

/** The identities the node's components use, by what they are. */
export const CLIENTS = {
    admin: { name: "admin", subject: "/O=system:masters/CN=kubernetes-admin" },
    controllerManager: { name: "controller-manager", subject: "/CN=system:kube-controller-manager" },
    scheduler: { name: "scheduler", subject: "/CN=system:kube-scheduler" },
    // The apiserver's identity towards the kubelet (logs, exec, port-forward).
    apiserverKubelet: {
        name: "apiserver-kubelet-client",
        subject: "/O=system:masters/CN=kube-apiserver-kubelet-client",
    },
    // Bound to the read-only role CoreDNS needs (node.ts creates it).
    coredns: { name: "coredns", subject: "/CN=system:coredns" },
} as const satisfies Record<string, ClientIdentity>;

/** The kubelet's identity: the Node authorizer and NodeRestriction admit it for its own node only. */
export function kubeletIdentity(nodeName: string): ClientIdentity {
    return { name: "kubelet", subject: `/O=system:nodes/CN=system:node:${nodeName}` };
}

function openssl(dir: string, ...args: string[]): void {
    childProcess.execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Writes ca.{crt,key}, apiserver.{crt,key}, one {name}.{crt,key} per client, and sa.{key,pub} to
 * `dir`. The serving certificate names the node's address, the `kubernetes` Service's first
 * cluster IP and its DNS names.
 */
export function makeClusterPki(dir: string, nodeName: string, nodeAddress: string, serviceIp: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=k8s-real-ca",
        "-days",
        "1",
    );
    const sign = (name: string, subject: string, extensions: string) => {
        openssl(dir, "req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
        fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
        const ca = ["-CA", "ca.crt", "-CAkey", "ca.key", "-days", "1"];
        openssl(dir, "x509", "-req", "-in", `${name}.csr`, ...ca, "-extfile", `${name}.ext`, "-out", `${name}.crt`);
    };
    const names = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ];
    const sans = [
        `IP:${nodeAddress}`,
        `IP:${serviceIp}`,
        "IP:127.0.0.1",
        `DNS:${nodeName}`,
        ...names.map((n) => `DNS:${n}`),
    ];
    sign("apiserver", "/CN=kube-apiserver", `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\n`);
    for (const client of [...Object.values(CLIENTS), kubeletIdentity(nodeName)])
        sign(client.name, client.subject, "extendedKeyUsage=clientAuth\n");
    openssl(dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key");
    openssl(dir, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub");
    for (const f of fs.readdirSync(dir)) if (/\.(csr|ext|srl)$/.test(f)) fs.rmSync(path.join(dir, f));
}

/** A kubeconfig (JSON is YAML) for one client identity, its files at `pkiDir` (on the node or here). */
export function kubeconfig(server: string, client: ClientIdentity, pkiDir: string): string {
    const file = (name: string) => path.posix.join(pkiDir, name);
    return JSON.stringify(
        {
            apiVersion: "v1",
            kind: "Config",
            clusters: [{ name: "k8s-real", cluster: { server, "certificate-authority": file("ca.crt") } }],
            users: [
                {
                    name: client.name,
                    user: {
                        "client-certificate": file(`${client.name}.crt`),
                        "client-key": file(`${client.name}.key`),
                    },
                },
            ],
            contexts: [{ name: "k8s-real", context: { cluster: "k8s-real", user: client.name } }],
            "current-context": "k8s-real",
        },
        null,
        2,
    );
}
