// What a schema check does not see in the objects the kubernetes and hybrid topologies render: every
// mount names a declared volume, every ConfigMap/Secret volume a rendered object and key, port names
// are valid and unique. The API server's own validation of the same objects is server-validate.test.ts
// (`npm run test:k8s`), and the real cluster runs them (`npm run test:k8s-real`).
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- manifests are read as loose JSON */

import * as assert from "assert";
import { Json } from "./helpers";
import { apiVersionKind, Manifest } from "./render";
import { VARIANTS } from "./variants";

/** A port name as the API server's Go validation wants it (IANA_SVC_NAME). */
function portNameProblem(name: string): string | undefined {
    if (name.length > 15) return "longer than 15 characters";
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) || name.includes("--")) return "not an IANA service name";
    if (!/[a-z]/.test(name)) return "has no letter";
    return undefined;
}

/**
Every mount names a declared volume, every ConfigMap/Secret volume names a rendered
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

describe("references between the rendered manifests (volumes, ConfigMaps, Secrets, port names)", function () {
    this.timeout(120_000);
    const rendered: Record<string, Manifest[]> = {};

    before(async function () {
        for (const [variant, render] of Object.entries(VARIANTS)) rendered[variant] = await render();
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
        const jobs = (variant: string) =>
            rendered[variant]
                .filter((m) => m.object.kind === "Job")
                .map((m) => String((m.object.metadata as Json).name))
                .sort();
        // ACLs off: no ACL Job; hybrid: no server-count Job (its servers are VMs).
        assert.deepStrictEqual(jobs("dev"), ["consul-acl-agent-token", "consul-server-count"]);
        assert.deepStrictEqual(jobs("acl-off"), ["consul-server-count"]);
        assert.deepStrictEqual(jobs("hybrid"), ["consul-acl-agent-token"]);
    });

    it("every volume mount and ConfigMap/Secret volume refers to something rendered", () => {
        for (const [variant, manifests] of Object.entries(rendered))
            assert.deepStrictEqual(referenceProblems(manifests), [], variant);
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
