// A real etcd + kube-apiserver on this host, for the suites that send the rendered manifests to the
// API server itself (server-validate.test.ts). Binaries from scripts/k8s/build-control-plane.sh
// (built on first use, then cached). Everything listens on 127.0.0.1 on free ports, lives in one
// temp dir, and stop() kills both processes and removes the dir, also when start() fails half-way.

import * as childProcess from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../mocks";

export interface ControlPlaneBinaries {
    readonly apiserver: string;
    readonly etcd: string;
}

export interface ApiResponse {
    readonly status: number;
    readonly body: Record<string, unknown>;
    /** The API server's Warning headers (code 299), text only. */
    readonly warnings: string[];
}

export interface ApiServer {
    readonly url: string;
    readonly dir: string;
    readonly pids: number[];
    readonly ports: number[];
    request(method: string, urlPath: string, body?: unknown, contentType?: string): Promise<ApiResponse>;
    stop(): Promise<void>;
}

/** Builds (first time) or finds the cached binaries; a failed build throws, it never skips. */
export function controlPlaneBinaries(): ControlPlaneBinaries {
    const run = childProcess.spawnSync("bash", [path.join(REPO_ROOT, "scripts/k8s/build-control-plane.sh")], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    const [apiserver, etcd] = run.stdout.trim().split("\n").slice(-2);
    if (run.status !== 0 || !apiserver || !etcd || !fs.existsSync(apiserver) || !fs.existsSync(etcd))
        throw new Error(
            `scripts/k8s/build-control-plane.sh could not provide kube-apiserver and etcd (exit ${run.status}); it needs Go (/usr/local/go/bin/go) and the Go module proxy`,
        );
    return { apiserver, etcd };
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as net.AddressInfo).port;
            server.close(() => resolve(port));
        });
    });
}

function openssl(dir: string, ...args: string[]): void {
    childProcess.execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A throw-away CA, the API server's serving cert, an admin client cert (system:masters), the SA key. */
function makeCertificates(dir: string): void {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(dir, "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-ca", "-days", "1");
    const sign = (name: string, subject: string, extensions: string) => {
        openssl(dir, "req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
        fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
        const ca = ["-CA", "ca.crt", "-CAkey", "ca.key", "-days", "1"];
        openssl(dir, "x509", "-req", "-in", `${name}.csr`, ...ca, "-extfile", `${name}.ext`, "-out", `${name}.crt`);
    };
    sign("serving", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    sign("admin", "/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth\n");
    openssl(dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key");
    openssl(dir, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub");
}

function logTail(file: string): string {
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").slice(-15).join("\n") : "(no log)";
}

async function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts etcd and kube-apiserver and waits for /readyz; on any failure everything is torn down. */
export async function startApiServer(bin: ControlPlaneBinaries): Promise<ApiServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-k8s-apiserver-"));
    const children: childProcess.ChildProcess[] = [];
    const ports: number[] = [];
    const alive = (c: childProcess.ChildProcess) => c.exitCode === null && c.signalCode === null;
    // A safety net should the test process die before stop() runs (mocha --exit, an uncaught error).
    const killAll = () => {
        for (const c of children) if (alive(c)) c.kill("SIGKILL");
    };
    process.once("exit", killAll);
    const spawn = (name: string, file: string, args: string[]) => {
        const log = fs.openSync(path.join(dir, `${name}.log`), "w");
        const child = childProcess.spawn(file, args, { cwd: dir, stdio: ["ignore", log, log] });
        fs.closeSync(log);
        children.push(child);
        return child;
    };
    const stop = async () => {
        // The API server first (its shutdown still talks to etcd), then etcd; SIGKILL after 10 s each.
        for (const c of [...children].reverse()) {
            if (alive(c)) c.kill("SIGTERM");
            const deadline = Date.now() + 10_000;
            while (alive(c) && Date.now() < deadline) await sleep(100);
            if (alive(c)) c.kill("SIGKILL");
            while (alive(c)) await sleep(50);
        }
        process.removeListener("exit", killAll);
        fs.rmSync(dir, { recursive: true, force: true });
    };
    try {
        makeCertificates(dir);
        const [etcdClient, etcdPeer, secure] = [await freePort(), await freePort(), await freePort()];
        ports.push(etcdClient, etcdPeer, secure);
        const etcdUrl = `http://127.0.0.1:${etcdClient}`;
        const peerUrl = `http://127.0.0.1:${etcdPeer}`;
        // Plain HTTP on loopback: the store of a throw-away test server (its data dir is in `dir`).
        spawn("etcd", bin.etcd, [
            "--name=test",
            `--data-dir=${path.join(dir, "etcd")}`,
            `--listen-client-urls=${etcdUrl}`,
            `--advertise-client-urls=${etcdUrl}`,
            `--listen-peer-urls=${peerUrl}`,
            `--initial-advertise-peer-urls=${peerUrl}`,
            `--initial-cluster=test=${peerUrl}`,
            "--unsafe-no-fsync",
        ]);
        const file = (name: string) => path.join(dir, name);
        // Admission plugins: the default set, which in 1.34 includes PodSecurity.
        const apiserver = spawn("kube-apiserver", bin.apiserver, [
            `--etcd-servers=${etcdUrl}`,
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            `--secure-port=${secure}`,
            `--cert-dir=${dir}`,
            `--tls-cert-file=${file("serving.crt")}`,
            `--tls-private-key-file=${file("serving.key")}`,
            `--client-ca-file=${file("ca.crt")}`,
            "--authorization-mode=RBAC",
            `--service-account-key-file=${file("sa.pub")}`,
            `--service-account-signing-key-file=${file("sa.key")}`,
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
        ]);
        const request = apiRequest(secure, dir);
        const deadline = Date.now() + 180_000;
        for (;;) {
            for (const c of children)
                if (c.exitCode !== null || c.signalCode !== null)
                    throw new Error(
                        `${c === apiserver ? "kube-apiserver" : "etcd"} exited (${c.exitCode ?? c.signalCode}):\n${logTail(path.join(dir, c === apiserver ? "kube-apiserver.log" : "etcd.log"))}`,
                    );
            const ready = await request("GET", "/readyz").catch(() => undefined);
            if (ready?.status === 200) break;
            if (Date.now() > deadline)
                throw new Error(`kube-apiserver not ready in 180 s:\n${logTail(file("kube-apiserver.log"))}`);
            await sleep(500);
        }
        return {
            url: `https://127.0.0.1:${secure}`,
            dir,
            pids: children.map((c) => c.pid ?? -1),
            ports,
            request,
            stop,
        };
    } catch (err) {
        await stop();
        throw err;
    }
}

function apiRequest(port: number, dir: string): ApiServer["request"] {
    const ca = fs.readFileSync(path.join(dir, "ca.crt"));
    const cert = fs.readFileSync(path.join(dir, "admin.crt"));
    const key = fs.readFileSync(path.join(dir, "admin.key"));
    return (method, urlPath, body, contentType = "application/json") =>
        new Promise((resolve, reject) => {
            const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
            const req = https.request(
                {
                    host: "127.0.0.1",
                    port,
                    path: urlPath,
                    method,
                    ca,
                    cert,
                    key,
                    servername: "localhost",
                    headers: payload === undefined ? {} : { "Content-Type": contentType },
                    timeout: 30_000,
                },
                (res) => {
                    const chunks: Buffer[] = [];
                    res.on("data", (c: Buffer) => chunks.push(c));
                    res.on("end", () => {
                        const text = Buffer.concat(chunks).toString("utf8");
                        let parsed: Record<string, unknown>;
                        try {
                            parsed = JSON.parse(text) as Record<string, unknown>;
                        } catch {
                            parsed = { text };
                        }
                        // Node joins repeated Warning headers with ", ": take each quoted text.
                        const raw = [res.headers.warning ?? []].flat().join(", ");
                        const warnings = [...raw.matchAll(/299 - "((?:[^"\\]|\\.)*)"/g)].map((m) =>
                            m[1].replace(/\\(.)/g, "$1"),
                        );
                        resolve({ status: res.statusCode ?? 0, body: parsed, warnings });
                    });
                },
            );
            req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
            req.on("error", reject);
            if (payload !== undefined) req.write(payload);
            req.end();
        });
}
