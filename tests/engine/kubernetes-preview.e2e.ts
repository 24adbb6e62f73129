// `pulumi preview --stack dev` (Pulumi.dev.yaml as committed, plus only kubernetes:kubeconfig) with
// the real CLI and the real Kubernetes provider (pulumi-kubernetes, built by scripts/engine/build.sh)
// against a real kube-apiserver 1.34 + etcd 3.6 on loopback (tests/kubernetes/api-server.ts). The
// provider previews a create by a server-side apply with dryRun=All, so what the server answered
// (its uid, its defaults, its admission's refusal) shows in the plan; the engine's event log holds it.
// Run with `npm run test:engine` (or this file alone with mocha, as the README says).

import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { log } from "../e2e/hosts";
import { evaluateProgram, REPO_ROOT, stackFileConfig } from "../mocks";
import { ResourcePaths, messageOf } from "../kubernetes/api-objects";
import { ApiServer, controlPlaneBinaries, startApiServer } from "../kubernetes/api-server";
import { Json } from "../kubernetes/helpers";
import { Manifest, manifestsOf } from "../kubernetes/render";
import { engineCacheDir, VM_ENGINE_COMPONENTS } from "../../scripts/engine/engine-cache";
import { nameOf, PulumiProject, RunResult } from "./pulumi-cli";

const SDK_VERSION = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
        dependencies: Record<string, string>;
    }
).dependencies["@pulumi/kubernetes"];
/** What the brief of this suite names: the plan holds at least one of each. */
const KINDS = ["Namespace", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Job"];
const DENY = "consul-test-deny-jobs";
/** How the engine's event log shows an unknown value and a secret one (sdk/go/common/resource/sig). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

interface Planned {
    readonly op: string;
    readonly type: string;
    readonly name: string;
    readonly outputs: Json;
    /**
     * Inputs unknown until `pulumi up` (an unknown or a secret: every secret of this stack derives from
     * a RandomPassword or a tls key): the provider previews such an object from its inputs alone.
     */
    readonly computed: boolean;
}
interface OutputsEvent {
    resOutputsEvent?: {
        metadata: { op: string; urn: string; type: string; new?: { inputs?: Json; outputs?: Json } };
    };
}
interface Preview extends RunResult {
    readonly planned: Planned[];
}

function figure(line: string): void {
    log(`FIGURE ${line}`);
}

function sha256(file: string): string {
    return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

let logs = 0;
/** `pulumi preview --stack dev` with the engine's event log: each resource's step and planned state. */
async function preview(project: PulumiProject): Promise<Preview> {
    const eventLog = path.join(path.dirname(project.dir), `k8s-preview-${++logs}.jsonl`);
    const run = await project.run(["preview", "--stack", project.stack, "--event-log", eventLog]);
    const planned: Planned[] = [];
    const text = fs.existsSync(eventLog) ? fs.readFileSync(eventLog, "utf8") : "";
    for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
        const meta = (JSON.parse(line) as OutputsEvent).resOutputsEvent?.metadata;
        if (meta?.type.startsWith("kubernetes:")) {
            const inputs = JSON.stringify(meta.new?.inputs ?? {});
            const computed = inputs.includes(UNKNOWN) || inputs.includes(SECRET_SIG);
            planned.push({
                op: meta.op,
                type: meta.type,
                name: nameOf(meta.urn),
                outputs: meta.new?.outputs ?? {},
                computed,
            });
        }
    }
    return { ...run, planned };
}

const kindOf = (type: string): string => type.slice(type.lastIndexOf(":") + 1);
/** The server's own marks on an object: set by kube-apiserver, never by the program or the provider. */
const serverMarks = (o: Json) => ({
    uid: /^[0-9a-f-]{36}$/.test(String(o.metadata?.uid)),
    created: typeof o.metadata?.creationTimestamp === "string",
});

describe("pulumi preview --stack dev with the real Kubernetes provider against a real kube-apiserver", function () {
    this.timeout(90 * 60_000);
    let server: ApiServer | undefined;
    let project: PulumiProject | undefined;
    let paths: ResourcePaths;
    let program: Manifest[];
    let types: Map<string, string>;

    before(async () => {
        const bin = controlPlaneBinaries();
        const dev = stackFileConfig("dev").config;
        // The objects the program declares, from a mocked run: what the real plan must hold.
        const evaluated = await evaluateProgram(dev, { stack: "dev" });
        program = manifestsOf(evaluated);
        types = new Map(
            evaluated.mocks.resources.filter((r) => r.type.startsWith("kubernetes:")).map((r) => [r.name, r.type]),
        );
        project = await PulumiProject.create("dev", dev, [...VM_ENGINE_COMPONENTS, "kubernetes"]);
        const started = Date.now();
        server = await startApiServer(bin);
        figure(`k8s-preview: kube-apiserver ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        paths = new ResourcePaths(server);
        const kubeconfig = path.join(path.dirname(project.dir), "kubeconfig");
        const file = (name: string) => path.join(server!.dir, name);
        fs.writeFileSync(
            kubeconfig,
            JSON.stringify({
                apiVersion: "v1",
                kind: "Config",
                clusters: [{ name: "test", cluster: { server: server.url, "certificate-authority": file("ca.crt") } }],
                users: [
                    {
                        name: "admin",
                        user: { "client-certificate": file("admin.crt"), "client-key": file("admin.key") },
                    },
                ],
                contexts: [{ name: "test", context: { cluster: "test", user: "admin" } }],
                "current-context": "test",
            }),
            { mode: 0o600 },
        );
        await project.must(["config", "set", "--stack", "dev", "kubernetes:kubeconfig", kubeconfig]);
    });
    after(async () => {
        project?.dispose();
        await server?.stop();
    });

    it(`the engine runs the provider built from pulumi-kubernetes, installed as ${SDK_VERSION}, not the preview-only stub`, () => {
        const cache = engineCacheDir();
        const installed = project!.installedPlugin("kubernetes", SDK_VERSION);
        assert.strictEqual(sha256(installed), sha256(path.join(cache, "providers", "pulumi-resource-kubernetes")));
        assert.notStrictEqual(sha256(installed), sha256(path.join(cache, "bin", "pulumi-resource-stub")));
    });

    it("a fresh cluster: every object the program declares is planned as a create under its type token; the Namespaces carry what the server answered to the dry run; nothing is stored", async () => {
        const result = await preview(project!);
        assert.strictEqual(result.code, 0, result.output.slice(-4000));
        assert.deepStrictEqual(
            result.planned.map((p) => `${p.op} ${p.type} ${p.name}`).sort(),
            [...types].map(([name, type]) => `create ${type} ${name}`).sort(),
        );
        const kinds = new Set(result.planned.map((p) => kindOf(p.type)));
        assert.deepStrictEqual(
            KINDS.filter((k) => !kinds.has(k)),
            [],
        );
        // The provider's dry-run apply of each Namespace reached the server: its uid, timestamp and the
        // label kube-apiserver adds to every namespace. The namespaced objects fall back to their
        // inputs (their namespace does not exist yet: the provider's rule), so carry no uid.
        for (const p of result.planned) {
            const namespace = kindOf(p.type) === "Namespace";
            assert.deepStrictEqual(serverMarks(p.outputs), { uid: namespace, created: namespace }, p.name);
            if (namespace)
                assert.strictEqual(p.outputs.metadata.labels["kubernetes.io/metadata.name"], p.outputs.metadata.name);
        }
        for (const ns of program.filter((m) => m.object.kind === "Namespace")) {
            const name = String((ns.object.metadata as Json).name);
            const res = await server!.request("GET", `/api/v1/namespaces/${name}`);
            assert.strictEqual(res.status, 404, `${name} was stored: ${messageOf(res)}`);
        }
        figure(
            `k8s-preview: fresh cluster, ${result.planned.length} Kubernetes objects planned as creates ` +
                `(${[...kinds].sort().join(", ")}) in ${(result.ms / 1000).toFixed(1)} s`,
        );
    });

    it("the namespaces exist: every object whose inputs are known is dry-run applied by the server, which sets its uid and its defaults; the others are planned from their inputs", async () => {
        for (const ns of program.filter((m) => m.object.kind === "Namespace")) {
            const res = await paths.apply(ns.object);
            assert.ok(res.status === 200 || res.status === 201, messageOf(res));
        }
        const result = await preview(project!);
        assert.strictEqual(result.code, 0, result.output.slice(-4000));
        assert.strictEqual(result.planned.length, types.size);
        for (const p of result.planned) {
            assert.strictEqual(p.op, "create", p.name);
            const marked = !p.computed;
            assert.deepStrictEqual(serverMarks(p.outputs), { uid: marked, created: marked }, p.name);
        }
        const dryRun = result.planned.filter((p) => !p.computed);
        const known = new Set(dryRun.map((p) => kindOf(p.type)));
        assert.deepStrictEqual(
            ["Namespace", "ConfigMap", "Service", "PodDisruptionBudget", "Job"].filter((k) => !known.has(k)),
            [],
        );
        // A default only the server fills in (the program does not set it): the Job's pod template.
        const job = result.planned.find((p) => kindOf(p.type) === "Job");
        assert.ok(job, "no Job planned");
        assert.strictEqual(job.outputs.spec.template.spec.schedulerName, "default-scheduler");
        // Dry run: the namespace still holds no Job.
        const stored = await server!.request("GET", `/apis/batch/v1/namespaces/${job.outputs.metadata.namespace}/jobs`);
        assert.deepStrictEqual(stored.body.items, []);
        figure(
            `k8s-preview: namespaces present, ${dryRun.length} of ${result.planned.length} objects dry-run applied by the server ` +
                `(${result.planned.length - dryRun.length} with inputs unknown until up: ` +
                `${result.planned
                    .filter((p) => p.computed)
                    .map((p) => kindOf(p.type))
                    .sort()
                    .join(", ")}) ` +
                `in ${(result.ms / 1000).toFixed(1)} s`,
        );
    });

    it("control: a ValidatingAdmissionPolicy on the server refusing Jobs fails the preview with the server's message; removed, the preview passes again", async () => {
        const job = program.find((m) => m.object.kind === "Job")!;
        const policy = {
            apiVersion: "admissionregistration.k8s.io/v1",
            kind: "ValidatingAdmissionPolicy",
            metadata: { name: DENY },
            spec: {
                failurePolicy: "Fail",
                matchConstraints: {
                    resourceRules: [
                        {
                            apiGroups: ["batch"],
                            apiVersions: ["v1"],
                            operations: ["CREATE", "UPDATE"],
                            resources: ["jobs"],
                        },
                    ],
                },
                validations: [{ expression: "false", message: "test policy: no Jobs" }],
            },
        };
        const binding = {
            apiVersion: "admissionregistration.k8s.io/v1",
            kind: "ValidatingAdmissionPolicyBinding",
            metadata: { name: DENY },
            spec: { policyName: DENY, validationActions: ["Deny"] },
        };
        for (const o of [policy, binding]) {
            const res = await paths.apply(o);
            assert.ok(res.status === 200 || res.status === 201, messageOf(res));
        }
        // The server enforces a new policy once its informer has it: wait until a dry run is refused.
        const deadline = Date.now() + 60_000;
        for (;;) {
            const res = await paths.dryRunCreate(job.object);
            if (res.status === 422 || res.status === 403) break;
            assert.ok(Date.now() < deadline, `the policy is not enforced after 60 s: ${res.status} ${messageOf(res)}`);
            await new Promise((r) => setTimeout(r, 500));
        }
        const refused = await preview(project!);
        assert.notStrictEqual(refused.code, 0, refused.output.slice(-4000));
        // The provider's error for the Job, carrying the API server's own refusal.
        const jobName = String((job.object.metadata as Json).name);
        assert.match(
            refused.output,
            new RegExp(
                `kubernetes:batch/v1:Job \\(${job.resourceName}\\):\\n\\s+error: Preview failed: resource "\\S+" was not successfully created by the Kubernetes API server: ` +
                    `jobs\\.batch "${jobName}" is forbidden: ValidatingAdmissionPolicy '${DENY}' with binding '${DENY}' denied request: test policy: no Jobs`,
            ),
        );
        const removed = await server!.request(
            "DELETE",
            `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${DENY}`,
        );
        assert.strictEqual(removed.status, 200, messageOf(removed));
        const until = Date.now() + 60_000;
        while ((await paths.dryRunCreate(job.object)).status !== 201) {
            assert.ok(Date.now() < until, "the policy is still enforced 60 s after its binding was deleted");
            await new Promise((r) => setTimeout(r, 500));
        }
        const passed = await preview(project!);
        assert.strictEqual(passed.code, 0, passed.output.slice(-4000));
        figure(`k8s-preview: control refused by the server's admission policy, passed after its removal`);
    });
});
