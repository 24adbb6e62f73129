// Shared lookups for the Kubernetes tests: the objects a stack rendered, typed loosely as JSON.
/* eslint-disable @typescript-eslint/no-unsafe-call -- manifests are read as loose JSON */

import { tokenFromSeed } from "../../components/security/secret-seeds";
import * as assert from "assert";
import { EvaluatedStack, RecordedResource } from "../mocks";

/* eslint-disable @typescript-eslint/no-explicit-any -- the same */
export type Json = any;

export const T = {
    namespace: "kubernetes:core/v1:Namespace",
    configMap: "kubernetes:core/v1:ConfigMap",
    secret: "kubernetes:core/v1:Secret",
    service: "kubernetes:core/v1:Service",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
    pdb: "kubernetes:policy/v1:PodDisruptionBudget",
    job: "kubernetes:batch/v1:Job",
    provider: "pulumi:providers:kubernetes",
} as const;

/** The one object of this type whose metadata.name (and namespace, if given) match. */
export function k8sObject(result: EvaluatedStack, type: string, name: string, namespace?: string): RecordedResource {
    const found = result.mocks
        .ofType(type)
        .filter(
            (r) =>
                (r.inputs as Json).metadata?.name === name &&
                (namespace === undefined || (r.inputs as Json).metadata?.namespace === namespace),
        );
    assert.strictEqual(found.length, 1, `expected one ${type} named ${name}, found ${found.length}`);
    return found[0];
}

export function inputs(result: EvaluatedStack, type: string, name: string): Json {
    return k8sObject(result, type, name).inputs;
}

export function podSpec(workload: Json): Json {
    return workload.spec.template.spec;
}

export function container(workload: Json, name = "consul"): Json {
    const found = podSpec(workload).containers.find((c: Json) => c.name === name);
    assert.ok(found, `no container ${name}`);
    return found;
}

export function envOf(c: Json, name: string): Json {
    return (c.env as Json[]).find((e) => e.name === name);
}

export function volume(workload: Json, name: string): Json {
    const found = podSpec(workload).volumes.find((v: Json) => v.name === name);
    assert.ok(found, `no volume ${name}`);
    return found;
}

export function mount(c: Json, name: string): Json {
    const found = (c.volumeMounts as Json[]).find((m) => m.name === name);
    assert.ok(found, `no volume mount ${name}`);
    return found;
}

/** Every secret value the stack holds: gossip key, ACL tokens, private keys. */
export function secretValues(result: EvaluatedStack): string[] {
    const values = [
        String(result.outputs.gossipKey),
        String(result.outputs.aclManagementToken),
        ...result.mocks
            .ofType("random:index/randomPassword:RandomPassword")
            .flatMap((r) => [String(r.state.result), tokenFromSeed(String(r.state.result))]),
        ...result.mocks.ofType("tls:index/privateKey:PrivateKey").map((r) => String(r.state.privateKeyPem)),
    ];
    return values.filter((v) => v.length >= 16);
}

export function assertNoSecretIn(result: EvaluatedStack, text: string, where: string): void {
    for (const secret of secretValues(result)) {
        assert.ok(!text.includes(secret), `${where} contains a secret value`);
        // Also as it would appear inside JSON (private keys have newlines).
        assert.ok(!text.includes(JSON.stringify(secret).slice(1, -1)), `${where} contains a secret value (escaped)`);
    }
}

export function configJson(result: EvaluatedStack, configMapName: string, key: string): Json {
    return JSON.parse(inputs(result, T.configMap, configMapName).data[key] as string);
}

export function secretJson(result: EvaluatedStack, secretName: string, key: string): Json {
    return JSON.parse(inputs(result, T.secret, secretName).stringData[key] as string);
}
