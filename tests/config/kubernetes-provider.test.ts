// A stack that turns off a Kubernetes provider setting Pulumi.yaml turns on is refused before
// anything is touched (components/config/kubernetes-provider.ts); why the settings matter is proven
// on a real cluster by tests/k8s-real (scenario 4).

import * as assert from "assert";
import { ConfigError, parseSettings } from "../../components/config";

function problemsOf(topology: string, kubernetesProvider: Record<string, string>): readonly string[] {
    try {
        parseSettings({ topology }, "consul", "dev", { kubernetesProvider });
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
        return err.problems;
    }
    return [];
}

describe("Kubernetes provider settings in stack config", () => {
    for (const name of ["enableConfigMapMutable", "enableSecretMutable"]) {
        it(`kubernetes:${name} false on kubernetes: refused, naming the key, the value and the fix`, () => {
            const problems = problemsOf("kubernetes", { [name]: "false", kubeconfig: "/k" });
            assert.deepStrictEqual(problems.length, 1, problems.join("\n"));
            assert.match(
                problems[0],
                new RegExp(
                    `^kubernetes:${name} = "false": must stay true \\(Pulumi\\.yaml sets it\\).*every server at once; remove the key from the stack's config\\.$`,
                ),
            );
        });
    }

    it("true (Pulumi.yaml's value) or unset: accepted", () => {
        assert.deepStrictEqual(
            problemsOf("kubernetes", { enableConfigMapMutable: "true", enableSecretMutable: "true" }),
            [],
        );
        assert.deepStrictEqual(problemsOf("kubernetes", {}), []);
    });
});
