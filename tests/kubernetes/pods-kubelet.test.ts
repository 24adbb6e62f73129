// The pure parts of the pod emulation (tests/k8s-pods/kubelet.ts), in the unit suite: $(VAR)
// expansion, downward-API env, volume files and modes, and the unit properties from the
// security context of the dev stack's rendered pods.
/* eslint-disable @typescript-eslint/no-unsafe-call -- manifests are read as loose JSON */

import * as assert from "assert";
import { evaluateProgram, stackFileConfig } from "../mocks";
import { Json } from "./helpers";
import { Manifest, manifestsOf } from "./render";
import {
    containerArgv,
    containerEnv,
    expandKubelet,
    PodContext,
    podSetupScript,
    projectedFiles,
    unitProperties,
} from "../k8s-pods/kubelet";

describe("kubelet emulation (pure parts)", () => {
    let manifests: Manifest[];
    const of = (kind: string): Json => manifests.find((m) => m.object.kind === kind)?.object;
    const placement = {
        podName: "consul-server-1",
        namespace: "consul",
        nodeName: "n1",
        hostIp: "10.0.0.9",
        podIp: "10.1.0.7",
    };
    before(async () => {
        manifests = manifestsOf(await evaluateProgram(stackFileConfig("dev").config, { stack: "dev" }));
    });

    it("expands $(VAR) as the kubelet does: defined vars, $$ escapes, undefined and unclosed left as written", () => {
        const env = new Map([
            ["POD_IP", "10.1.0.7"],
            ["A", "x"],
        ]);
        assert.strictEqual(expandKubelet("-advertise=$(POD_IP)", env), "-advertise=10.1.0.7");
        assert.strictEqual(expandKubelet("$$(POD_IP) $(NOPE) $A ${A} $(A", env), "$(POD_IP) $(NOPE) $A ${A} $(A");
        assert.strictEqual(expandKubelet("$(A)$(A)$", env), "xx$");
    });

    it("resolves the server's downward-API env and expands its args", () => {
        const c = of("StatefulSet").spec.template.spec.containers[0];
        const env = containerEnv(c, placement);
        assert.strictEqual(env.get("POD_IP"), "10.1.0.7");
        assert.strictEqual(env.get("POD_NAME"), "consul-server-1");
        assert.strictEqual(env.get("NAMESPACE"), "consul");
        const argv = containerArgv(c, env);
        assert.ok(argv.includes("-advertise=10.1.0.7") && argv.includes("-node=consul-server-1"), argv.join(" "));
        assert.strictEqual(argv[0], "consul");
    });

    it("writes Secret volumes with their defaultMode, decoded from stringData", () => {
        const tls = of("StatefulSet").spec.template.spec.volumes.find((v: Json) => v.name === "tls");
        const files = projectedFiles(tls, manifests, "consul");
        assert.deepStrictEqual(files.map((f) => `${f.path}:${f.mode.toString(8)}`).sort(), [
            "ca.crt:440",
            "tls.crt:440",
            "tls.key:440",
        ]);
        assert.match(files.find((f) => f.path === "ca.crt")?.content.toString() ?? "", /BEGIN CERTIFICATE/);
    });

    it("maps the security context and mounts to unit properties; refuses an undeclared volume", () => {
        const sts = of("StatefulSet");
        const ctx: PodContext = { placement, workload: sts, objects: manifests };
        const props = unitProperties(ctx, sts.spec.template.spec.containers[0]);
        assert.ok(props.includes("ReadOnlyPaths=/"));
        assert.ok(props.includes("NoNewPrivileges=yes"));
        assert.ok(props.includes("CapabilityBoundingSet="));
        assert.ok(props.includes("BindPaths=/var/lib/kubelet-emu/claims/data-consul-server-1:/consul/data"));
        assert.ok(
            props.includes("BindReadOnlyPaths=/var/lib/kubelet-emu/pods/consul-server-1/volumes/tls:/consul/tls"),
        );
        assert.match(podSetupScript(ctx), /chown 0:1000 .*tls\.key/);
        const broken = structuredClone(sts);
        broken.spec.template.spec.containers[0].volumeMounts.push({ name: "nope", mountPath: "/x" });
        assert.throws(() => podSetupScript({ ...ctx, workload: broken }), /mounts nope, which is no volume/);
    });
});
