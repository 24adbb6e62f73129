// The dev stack and its variants whose Kubernetes objects the validation suites check
// (references.test.ts between the objects, server-validate.test.ts against a real API server).

import { evaluateProgram, stackFileConfig, withOperatorHome } from "../mocks";
import { withPinnedKeys } from "../vm/fixtures";
import { Manifest, manifestsOf } from "./render";

const dev = () => stackFileConfig("dev").config;

export const VARIANTS: Record<string, () => Promise<Manifest[]>> = {
    dev: async () => manifestsOf(await evaluateProgram(dev(), { stack: "dev" })),
    "one-server": async () => manifestsOf(await evaluateProgram({ ...dev(), serverCount: "1" }, { stack: "dev" })),
    "five-servers": async () =>
        manifestsOf(await evaluateProgram({ ...dev(), serverCount: "5", antiAffinity: "required" }, { stack: "dev" })),
    "host-port": async () =>
        manifestsOf(await evaluateProgram({ ...dev(), clientNetworkMode: "hostPort" }, { stack: "dev" })),
    "acl-off": async () => manifestsOf(await evaluateProgram({ ...dev(), aclEnabled: "false" }, { stack: "dev" })),
    "plain-http-storage-class": async () =>
        manifestsOf(
            await evaluateProgram(
                { ...dev(), httpPort: "8500", dnsPort: "-1", storageClass: "fast-ssd", telemetryEnabled: "false" },
                { stack: "dev" },
            ),
        ),
    hybrid: async () => {
        const operator = withOperatorHome();
        try {
            return manifestsOf(
                await evaluateProgram(
                    withPinnedKeys({
                        topology: "hybrid",
                        serverHosts: JSON.stringify(["s1=10.20.0.11", "s2=10.20.0.12", "s3=consul-3.example.com"]),
                        sshPrivateKeyPath: "~/.ssh/consul_ed25519",
                    }),
                    { stack: "prod" },
                ),
            );
        } finally {
            operator.restore();
        }
    },
};

/** Every variant rendered once, in the order above. */
export async function renderVariants(): Promise<Record<string, Manifest[]>> {
    const rendered: Record<string, Manifest[]> = {};
    for (const [variant, render] of Object.entries(VARIANTS)) rendered[variant] = await render();
    return rendered;
}
