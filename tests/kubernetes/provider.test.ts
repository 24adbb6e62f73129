// The Kubernetes provider's settings (components/kubernetes/base.ts): an explicit provider gets them
// as arguments, the default one from Pulumi.yaml. Why they matter is proven on a real cluster by
// tests/k8s-real/cluster.e2e.ts scenario 4 (a logLevel change rolls the servers one at a time).

import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { KUBERNETES_PROVIDER_SETTINGS, kubernetesProviderArgs } from "../../components/kubernetes/base";
import { KubernetesSettings } from "../../components/config";
import { REPO_ROOT } from "../mocks";

describe("Kubernetes provider settings", () => {
    it("ConfigMaps and Secrets are updated in place, not replaced", () => {
        assert.deepStrictEqual(KUBERNETES_PROVIDER_SETTINGS, {
            enableConfigMapMutable: true,
            enableSecretMutable: true,
        });
    });

    it("the default provider gets them from Pulumi.yaml's project config", () => {
        const project = yaml.load(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as {
            config: Record<string, { value?: unknown }>;
        };
        for (const [key, value] of Object.entries(KUBERNETES_PROVIDER_SETTINGS))
            assert.deepStrictEqual(project.config[`kubernetes:${key}`], { value }, key);
    });

    it("an explicit provider (a kubeconfig or context in config) gets them as arguments", () => {
        const kube = { kubeconfig: "/etc/kube/config", context: "prod" } as unknown as KubernetesSettings;
        assert.deepStrictEqual(kubernetesProviderArgs(kube), {
            ...KUBERNETES_PROVIDER_SETTINGS,
            kubeconfig: "/etc/kube/config",
            context: "prod",
        });
        assert.strictEqual(kubernetesProviderArgs({} as KubernetesSettings), undefined);
    });
});
