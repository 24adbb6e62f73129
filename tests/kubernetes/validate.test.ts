// Kubernetes' own validation of every object the kubernetes and hybrid topologies render, with
// sigs.k8s.io/kubectl-validate (the API server's schema validation and built-in OpenAPI specs,
// offline). Run with `npm run test:k8s` (not in the unit suite: the tool takes ~10 min to build
// cold; scripts/k8s/kubectl-validate.sh caches it).
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- manifests are read as loose JSON */

import * as assert from "assert";
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { REPO_ROOT } from "../mocks";
import { Json } from "./helpers";
import { apiVersionKind, Manifest, toYaml, writeManifests } from "./render";
import { VARIANTS } from "./variants";

/** The Kubernetes minor versions we claim to support (README, Testing): the last four the tool carries. */
export const KUBERNETES_VERSIONS = ["1.27", "1.28", "1.29", "1.30"];

interface ValidationStatus {
    readonly status: string;
    readonly message?: string;
}

let binary = "";

function kubectlValidate(version: string, dir: string): Record<string, ValidationStatus[]> {
    const run = childProcess.spawnSync(binary, ["--version", version, "-o", "json", dir], {
        encoding: "utf8",
        // No kubeconfig: the tool must use its built-in specs, never a cluster.
        env: { PATH: process.env.PATH ?? "", HOME: os.tmpdir(), KUBECONFIG: "/dev/null" },
        timeout: 120_000,
    });
    const start = run.stdout.indexOf("{");
    if (start < 0) throw new Error(`kubectl-validate ${version} printed no JSON (exit ${run.status}): ${run.stderr}`);
    return JSON.parse(run.stdout.slice(start)) as Record<string, ValidationStatus[]>;
}

function failures(report: Record<string, ValidationStatus[]>): string[] {
    return Object.entries(report).flatMap(([file, results]) =>
        results.filter((r) => r.status !== "Success").map((r) => `${path.basename(file)}: ${r.message ?? r.status}`),
    );
}

/** A port name as the API server's Go validation wants it (IANA_SVC_NAME). */
function portNameProblem(name: string): string | undefined {
    if (name.length > 15) return "longer than 15 characters";
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) || name.includes("--")) return "not an IANA service name";
    if (!/[a-z]/.test(name)) return "has no letter";
    return undefined;
}

/**
 * Some of what kubectl-validate does not check (it runs the schema, not the API server's Go
 * validation): every mount names a declared volume, every ConfigMap/Secret volume names a rendered
 * object in the same namespace and every items key exists in it; port names are valid and unique.
 */
function referenceProblems(manifests: readonly Manifest[]): string[] {
    const problems: string[] = [];
    const byKind = (kind: string, name: string, namespace: string) =>
        manifests.find(
            (m) =>
                m.object.kind === kind &&
                (m.object.metadata as Json).name === name &&
                (m.object.metadata as Json).namespace === namespace,
        );
    for (const m of manifests) {
        const o = m.object as Json;
        if (o.kind === "Service") {
            const names = (o.spec.ports ?? []).map((p: Json) => String(p.name));
            if (new Set(names).size !== names.length) problems.push(`${m.resourceName}: duplicate port names`);
        }
        const pod = o.spec?.template?.spec;
        if (!pod) continue;
        const volumes = new Map<string, Json>((pod.volumes ?? []).map((v: Json) => [v.name, v]));
        const claimTemplates = new Set<string>((o.spec.volumeClaimTemplates ?? []).map((c: Json) => c.metadata.name));
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
            const portNames = (c.ports ?? []).map((p: Json) => String(p.name));
            if (new Set(portNames).size !== portNames.length)
                problems.push(`${m.resourceName}: ${c.name} has duplicate port names`);
            for (const name of portNames) {
                const problem = portNameProblem(name);
                if (problem) problems.push(`${m.resourceName}: ${c.name} port name ${name} is ${problem}`);
            }
            for (const mount of c.volumeMounts ?? []) {
                if (!volumes.has(mount.name) && !claimTemplates.has(mount.name))
                    problems.push(`${m.resourceName}: ${c.name} mounts undeclared volume ${mount.name}`);
            }
        }
        for (const v of volumes.values()) {
            const ref = v.configMap
                ? { kind: "ConfigMap", name: v.configMap.name, items: v.configMap.items }
                : v.secret
                  ? { kind: "Secret", name: v.secret.secretName, items: v.secret.items }
                  : undefined;
            if (!ref) continue;
            const target = byKind(ref.kind, ref.name, o.metadata.namespace);
            if (!target) {
                problems.push(
                    `${m.resourceName}: volume ${v.name} names ${ref.kind} ${ref.name}, which is not rendered`,
                );
                continue;
            }
            const keys = Object.keys({ ...(target.object as Json).data, ...(target.object as Json).stringData });
            for (const item of ref.items ?? [])
                if (!keys.includes(item.key)) problems.push(`${m.resourceName}: ${ref.name} has no key ${item.key}`);
        }
    }
    return problems;
}

describe("Kubernetes validation of the rendered manifests (kubectl-validate)", function () {
    this.timeout(15 * 60_000);
    let dir: string;
    const rendered: Record<string, Manifest[]> = {};

    before(async function () {
        const install = childProcess.spawnSync("bash", [path.join(REPO_ROOT, "scripts/k8s/kubectl-validate.sh")], {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "inherit"],
        });
        binary = install.stdout.trim().split("\n").pop() ?? "";
        assert.ok(
            install.status === 0 && fs.existsSync(binary),
            `scripts/k8s/kubectl-validate.sh could not provide kubectl-validate (exit ${install.status}); it needs Go (/usr/local/go/bin/go) and the Go module proxy`,
        );
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "consul-k8s-validate-"));
        for (const [variant, render] of Object.entries(VARIANTS)) {
            rendered[variant] = await render();
            writeManifests(path.join(dir, "ok"), variant, rendered[variant]);
        }
    });
    after(() => {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("maps resource type tokens to apiVersion and kind", () => {
        assert.deepStrictEqual(apiVersionKind("kubernetes:apps/v1:StatefulSet"), {
            apiVersion: "apps/v1",
            kind: "StatefulSet",
        });
        assert.deepStrictEqual(apiVersionKind("kubernetes:core/v1:Secret"), { apiVersion: "v1", kind: "Secret" });
        assert.deepStrictEqual(apiVersionKind("kubernetes:policy/v1:PodDisruptionBudget"), {
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
        });
        assert.strictEqual(apiVersionKind("pulumi:providers:kubernetes"), undefined);
    });

    it("renders every object kind of both topologies", () => {
        const kinds = (variant: string) => new Set(rendered[variant].map((m) => m.object.kind));
        for (const kind of ["Namespace", "ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget"])
            assert.ok(kinds("dev").has(kind), `dev renders no ${kind}`);
        for (const kind of ["DaemonSet", "Job"]) assert.ok(kinds("dev").has(kind) && kinds("hybrid").has(kind), kind);
        assert.ok(!kinds("hybrid").has("StatefulSet"));
        assert.ok(!kinds("acl-off").has("Job"), "ACLs off still renders the ACL Job");
    });

    it("every volume mount and ConfigMap/Secret volume refers to something rendered", () => {
        for (const [variant, manifests] of Object.entries(rendered))
            assert.deepStrictEqual(referenceProblems(manifests), [], variant);
    });

    for (const version of KUBERNETES_VERSIONS) {
        it(`every manifest of every variant passes Kubernetes ${version} validation`, () => {
            const report = kubectlValidate(version, path.join(dir, "ok"));
            const total = Object.values(rendered).reduce((n, m) => n + m.length, 0);
            assert.strictEqual(Object.keys(report).length, total, "kubectl-validate did not report on every file");
            assert.deepStrictEqual(failures(report), []);
        });
    }

    it("a broken manifest fails: unknown field, wrong type, invalid name", () => {
        const sts = rendered.dev.find((m) => m.object.kind === "StatefulSet");
        assert.ok(sts);
        const broken = (edit: (o: Json) => void): Record<string, unknown> => {
            const o = structuredClone(sts.object) as Json;
            edit(o);
            return o;
        };
        const badDir = path.join(dir, "bad");
        fs.mkdirSync(badDir);
        const cases: Record<string, Record<string, unknown>> = {
            "unknown-field": broken((o) => {
                o.spec.template.spec.terminationGracePeriod = 30;
            }),
            "wrong-type": broken((o) => {
                o.spec.template.spec.containers[0].ports[0].containerPort = "8300";
            }),
            "invalid-name": broken((o) => {
                o.metadata.name = "Consul_Server";
            }),
        };
        for (const [name, object] of Object.entries(cases))
            fs.writeFileSync(path.join(badDir, `${name}.yaml`), toYaml(object));
        fs.writeFileSync(path.join(badDir, "good.yaml"), toYaml(sts.object));
        for (const version of [KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[KUBERNETES_VERSIONS.length - 1]]) {
            const report = kubectlValidate(version, badDir);
            const status = (file: string) => report[path.join(badDir, file)]?.[0];
            assert.strictEqual(status("good.yaml")?.status, "Success", version);
            assert.match(status("unknown-field.yaml")?.message ?? "", /terminationGracePeriod: .*unknown field/);
            assert.match(status("wrong-type.yaml")?.message ?? "", /containerPort.*must be of type integer/);
            assert.match(status("invalid-name.yaml")?.message ?? "", /metadata\.name: Invalid value: "Consul_Server"/);
        }
    });

    it("a broken pod spec fails the reference check: the CA mounted from a volume that does not exist", () => {
        const ds = rendered.dev.find((m) => m.object.kind === "DaemonSet");
        assert.ok(ds);
        const o = structuredClone(ds.object) as Json;
        const ca = o.spec.template.spec.containers[0].volumeMounts.find((v: Json) => v.name === "ca");
        ca.name = "consul-ca";
        o.spec.template.spec.volumes.find((v: Json) => v.name === "tls").secret.secretName = "consul-client-tls";
        assert.deepStrictEqual(referenceProblems([...rendered.dev.filter((m) => m !== ds), { ...ds, object: o }]), [
            "consul-clients-daemonset: consul mounts undeclared volume consul-ca",
            "consul-clients-daemonset: volume tls names Secret consul-client-tls, which is not rendered",
        ]);
    });
});
