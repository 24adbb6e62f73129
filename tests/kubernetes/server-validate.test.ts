// Every object the kubernetes and hybrid topologies render, sent to a real kube-apiserver 1.34
// (+ etcd 3.6) built from Go modules (api-server.ts): the program's namespaces are created for
// real, every other object is created with ?dryRun=All&fieldValidation=Strict, so the server's
// decoding, defaulting, Go validation and admission all run, and nothing is stored. Run with
// `npm run test:k8s` (not in the unit suite: the binaries take many minutes to build cold).
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return -- manifests are read as loose JSON */

import * as assert from "assert";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { ApiServer, ControlPlaneBinaries, controlPlaneBinaries, startApiServer } from "./api-server";
import { messageOf, ResourcePaths } from "./api-objects";
import { Json } from "./helpers";
import { Manifest } from "./render";
import { renderVariants, VARIANTS } from "./variants";

/** The Kubernetes release the server runs (scripts/k8s/build-control-plane.sh's default). */
export const SERVER_KUBERNETES_VERSION = "v1.34.4";

describe(`The rendered manifests on a real kube-apiserver ${SERVER_KUBERNETES_VERSION} (server-side dry run)`, function () {
    this.timeout(60 * 60_000);
    let server: ApiServer | undefined;
    let paths: ResourcePaths;
    let rendered: Record<string, Manifest[]>;

    before(async function () {
        const bin = controlPlaneBinaries();
        rendered = await renderVariants();
        const started = Date.now();
        server = await startApiServer(bin);
        console.log(`      FIGURE kube-apiserver ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        paths = new ResourcePaths(server);
    });
    after(async () => {
        await server?.stop();
    });

    it(`the server is Kubernetes ${SERVER_KUBERNETES_VERSION} and authorizes by RBAC: the admin by its client certificate, no one else`, async () => {
        const version = await server!.request("GET", "/version");
        assert.strictEqual(version.body.gitVersion, SERVER_KUBERNETES_VERSION);
        const whoami = await server!.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
            apiVersion: "authentication.k8s.io/v1",
            kind: "SelfSubjectReview",
        });
        assert.strictEqual(whoami.status, 201, messageOf(whoami));
        assert.deepStrictEqual((whoami.body.status as Json).userInfo.groups, [
            "system:masters",
            "system:authenticated",
        ]);
        assert.deepStrictEqual(await anonymousGet(server!, "/api/v1/namespaces"), {
            status: 403,
            message:
                'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope',
        });
    });

    it("every variant renders namespaced objects only into the namespaces it renders", () => {
        for (const [variant, manifests] of Object.entries(rendered)) {
            const own = new Set(manifests.filter((m) => m.object.kind === "Namespace").map((m) => nameOf(m)));
            assert.ok(own.size > 0, `${variant} renders no Namespace`);
            const used = new Set(manifests.map((m) => (m.object.metadata as Json).namespace).filter(Boolean));
            assert.deepStrictEqual(
                [...used].filter((ns) => !own.has(ns)),
                [],
                variant,
            );
        }
    });

    for (const variant of Object.keys(VARIANTS)) {
        it(`${variant}: the namespaces are created and every other object is accepted`, async () => {
            const manifests = rendered[variant];
            const refused: string[] = [];
            const warned: string[] = [];
            for (const m of manifests.filter((x) => x.object.kind === "Namespace")) {
                const res = await paths.apply(m.object);
                if (res.status !== 200 && res.status !== 201) refused.push(`${m.resourceName}: ${messageOf(res)}`);
                warned.push(...res.warnings.map((w) => `${m.resourceName}: ${w}`));
            }
            const others = manifests.filter((x) => x.object.kind !== "Namespace");
            for (const m of others) {
                const res = await paths.dryRunCreate(m.object);
                if (res.status !== 201) refused.push(`${m.resourceName}: ${res.status} ${messageOf(res)}`);
                else assert.strictEqual((res.body.metadata as Json).name, nameOf(m), m.resourceName);
                warned.push(...res.warnings.map((w) => `${m.resourceName}: ${w}`));
            }
            assert.deepStrictEqual(refused, [], `${variant}: refused by the API server`);
            // The one warning: the DaemonSet in the clients' namespace, which warns at `restricted` on
            // purpose (pod-security.test.ts checks its text and that nothing else would be admitted).
            assert.deepStrictEqual(
                warned.map((w) => w.replace(/: would violate PodSecurity "restricted:v1\.34": .*$/, ": <restricted>")),
                ["consul-clients-daemonset: <restricted>"],
                `${variant}: the API server warned`,
            );
            assert.ok(others.length >= 8, `${variant}: only ${others.length} objects`);
            // Dry run stores nothing: the namespace holds none of the objects sent.
            const ns = String((others[0].object.metadata as Json).namespace);
            const stored = await server!.request("GET", `/api/v1/namespaces/${ns}/configmaps`);
            assert.deepStrictEqual(
                (stored.body.items as Json[]).map((i) => i.metadata.name).filter((n) => n !== "kube-root-ca.crt"),
                [],
            );
        });
    }

    it("a broken manifest is refused with the API server's own message", async () => {
        const sts = rendered.dev.find((m) => m.object.kind === "StatefulSet");
        assert.ok(sts);
        const broken = (edit: (o: Json) => void): Json => {
            const o = structuredClone(sts.object) as Json;
            edit(o);
            return o;
        };
        const good = await paths.dryRunCreate(sts.object);
        assert.strictEqual(good.status, 201, messageOf(good));

        const unknown = await paths.dryRunCreate(
            broken((o) => {
                o.spec.template.spec.terminationGracePeriod = 30;
            }),
        );
        assert.strictEqual(unknown.status, 400, messageOf(unknown));
        assert.strictEqual(
            messageOf(unknown),
            'StatefulSet in version "v1" cannot be handled as a StatefulSet: strict decoding error: unknown field "spec.template.spec.terminationGracePeriod"',
        );

        const quantity = await paths.dryRunCreate(
            broken((o) => {
                o.spec.template.spec.containers[0].resources.requests.memory = "128 megabytes";
            }),
        );
        assert.strictEqual(quantity.status, 400, messageOf(quantity));
        assert.match(
            messageOf(quantity),
            /^StatefulSet in version "v1" cannot be handled as a StatefulSet: quantities must match the regular expression/,
        );

        // Go validation, which a schema check alone does not run.
        const mount = await paths.dryRunCreate(
            broken((o) => {
                o.spec.template.spec.containers[0].volumeMounts[0].name = "no-such-volume";
            }),
        );
        assert.strictEqual(mount.status, 422, messageOf(mount));
        assert.match(
            messageOf(mount),
            /^StatefulSet.apps "consul-server" is invalid: spec\.template\.spec\.containers\[0\]\.volumeMounts\[0\]\.name: Not found: "no-such-volume"/,
        );
    });
});

function nameOf(m: Manifest): string {
    return String((m.object.metadata as Json).name);
}

describe("The API server runner leaves the host clean", function () {
    this.timeout(60 * 60_000);
    let bin: ControlPlaneBinaries;
    before(() => {
        bin = controlPlaneBinaries();
    });

    it("stop(): both processes gone, their ports closed, the temp dir removed", async () => {
        const server = await startApiServer(bin);
        assert.deepStrictEqual(
            running(bin),
            server.pids.slice().sort((a, b) => a - b),
        );
        assert.ok(await listening(server.ports[2]), "kube-apiserver is not listening");
        await server.stop();
        assert.deepStrictEqual(running(bin), []);
        for (const port of server.ports) assert.strictEqual(await listening(port), false, `port ${port}`);
        assert.strictEqual(fs.existsSync(server.dir), false, server.dir);
    });

    it("a start that fails half-way (etcd exits) throws with etcd's log and leaves nothing", async () => {
        const before = runnerDirs();
        await assert.rejects(startApiServer({ ...bin, etcd: "/bin/false" }), /^Error: etcd exited \(1\)/);
        assert.deepStrictEqual(running(bin), []);
        assert.deepStrictEqual(runnerDirs(), before);
    });
});

/** The pids of processes running either binary (read from /proc/<pid>/exe), sorted. */
function running(bin: ControlPlaneBinaries): number[] {
    const pids: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const exe = fs.readlinkSync(`/proc/${entry}/exe`);
            if (exe === bin.apiserver || exe === bin.etcd) pids.push(Number(entry));
        } catch {
            // gone, or not ours to read
        }
    }
    return pids.sort((a, b) => a - b);
}

async function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
    });
}

/** A request without a client certificate (the server's CA trusted). */
async function anonymousGet(server: ApiServer, urlPath: string): Promise<{ status: number; message: string }> {
    const ca = fs.readFileSync(path.join(server.dir, "ca.crt"));
    return new Promise((resolve, reject) => {
        https
            .get(`${server.url}${urlPath}`, { ca, servername: "localhost" }, (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => {
                    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { message: string };
                    resolve({ status: res.statusCode ?? 0, message: body.message });
                });
            })
            .on("error", reject);
    });
}

function runnerDirs(): string[] {
    return fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith("consul-k8s-apiserver-"));
}
