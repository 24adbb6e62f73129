// The policy pack (policy/rules.ts): every rule both ways on resources shaped like the program's
// (copies of what the dev and prod stacks register under the mocks, then broken one field at a
// time), and zero violations over everything the real program registers.

import * as assert from "assert";
import { PolicyResource, ResourceValidation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { EvaluatedStack, evaluateProgram, stackFileConfig, withOperatorHome } from "./mocks";
import { asPolicyResource, checkStack, urnOf } from "./policy-support";
import {
    aclDefaultDeny,
    bundleFiles,
    caKeyConfined,
    containerResources,
    gossipEncryption,
    isValidGossipKey,
    noKnownSecretExposed,
    noSecretInConfigMapOrArgs,
    oddServerCount,
    pinnedSshHostKeys,
    resourcePolicies,
    stackPolicies,
    tlsVerification,
    TYPES,
} from "../policy/rules";

// Synthetic resources are edited freely, as loosely typed JSON.
type Props = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Runs a resource policy on one synthetic resource; returns the violation messages. */
function check(policy: ResourceValidationPolicy, type: string, props: Props, stack = "prod"): string[] {
    const violations: string[] = [];
    const args = {
        type,
        props,
        urn: urnOf(stack, type, "r"),
        name: "r",
        opts: { protect: false, ignoreChanges: [], aliases: [], additionalSecretOutputs: [], customTimeouts: {} },
        stackTags: new Map<string, string>(),
        isType: () => false,
        asType: () => undefined,
        getConfig: () => ({}),
        notApplicable: () => {
            throw new Error("not applicable");
        },
    } as unknown as ResourceValidationArgs;
    const validations = ([] as ResourceValidation[]).concat(policy.validateResource ?? []);
    for (const validate of validations) void validate(args, (message) => violations.push(message));
    return violations;
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Rewrites one JSON file of a stdin bundle (or drops it when edit returns undefined). */
function editBundle(bundle: string, path: string, edit: (json: Props) => Props | undefined): string {
    return bundle
        .split("\n")
        .flatMap((line) => {
            const parts = line.split(" ");
            if (parts[0] !== path) return [line];
            const edited = edit(JSON.parse(Buffer.from(parts[4], "base64").toString("utf8")) as Props);
            if (edited === undefined) return [];
            parts[4] = Buffer.from(JSON.stringify(edited)).toString("base64");
            return [parts.join(" ")];
        })
        .join("\n");
}

/** Edits one JSON file of a ConfigMap: the main config unless `key` names another. */
function editConfigMap(props: Props, edit: (json: Props) => void, key?: string): Props {
    const copy = clone(props);
    key ??= Object.keys(copy.data as Props).find((k) => k.endsWith(".json") && k !== "startup-only.json") as string;
    const json = JSON.parse((copy.data as Props)[key] as string) as Props;
    edit(json);
    (copy.data as Props)[key] = JSON.stringify(json);
    return copy;
}

const MAIN = "/etc/consul.d/consul.json";
const SECRETS = "/etc/consul.d/secrets.json";
const GOSSIP = "/etc/consul.d/gossip.json";

describe("policy pack", () => {
    let operator: ReturnType<typeof withOperatorHome>;
    const stacks: Record<string, EvaluatedStack> = {};
    before(async () => {
        operator = withOperatorHome();
        for (const stack of ["dev", "prod"]) {
            const { config, secretKeys } = stackFileConfig(stack);
            stacks[stack] = await evaluateProgram(config, { stack, secretKeys });
        }
    });
    after(() => operator.restore());

    const find = (stack: string, type: string, nameIncludes: string): Props => {
        const found = stacks[stack].mocks.ofType(type).find((r) => r.name.includes(nameIncludes));
        assert.ok(found, `${stack} registers no ${type} named *${nameIncludes}*`);
        return clone(found.inputs);
    };
    const serverConfigMap = () => find("dev", TYPES.configMap, "servers-config");
    const clientConfigMap = () => find("dev", TYPES.configMap, "clients-config");
    const serverSecret = () => find("dev", TYPES.secret, "servers-secret-config");
    const statefulSet = () => find("dev", TYPES.statefulSet, "servers-statefulset");
    const daemonSet = () => find("dev", TYPES.daemonSet, "clients-daemonset");
    const vmServer = () => find("prod", TYPES.command, "server-consul-server-1");
    const vmClient = () => find("prod", TYPES.command, "client-app-1");

    for (const stack of ["dev", "prod"]) {
        it(`finds no violation in what the ${stack} stack registers`, () => {
            const recorded = stacks[stack].mocks.resources;
            assert.ok(recorded.length > 10, "the program registered resources");
            const violations: string[] = [];
            for (const policy of resourcePolicies) {
                for (const r of recorded) {
                    for (const v of check(policy, r.type, r.inputs, stack))
                        violations.push(`${policy.name} ${r.name}: ${v}`);
                }
            }
            const resources = recorded.map((r) => asPolicyResource(r, stack));
            for (const policy of stackPolicies) {
                for (const v of checkStack(policy, resources)) violations.push(`${policy.name}: ${v}`);
            }
            assert.deepStrictEqual(violations, []);
        });
    }

    it("sees the agent configs, secret fragments and workloads it checks (so a pass means something)", () => {
        // A rule that finds nothing to inspect would pass vacuously; each shape must be recognised.
        const bundle = vmServer().stdin as string;
        assert.ok(bundleFiles(bundle).has(MAIN) && bundleFiles(bundle).has(SECRETS));
        const mutated = editConfigMap(serverConfigMap(), (c) => (c.tls.defaults.verify_outgoing = false));
        assert.strictEqual(check(tlsVerification, TYPES.configMap, mutated).length, 1);
    });

    describe("consul-tls-verification", () => {
        it("passes the real server and client configs, on Kubernetes and VMs", () => {
            for (const [type, props] of [
                [TYPES.configMap, serverConfigMap()],
                [TYPES.configMap, clientConfigMap()],
                [TYPES.command, vmServer()],
                [TYPES.command, vmClient()],
                [TYPES.statefulSet, statefulSet()],
            ] as const) {
                assert.deepStrictEqual(check(tlsVerification, type, props), []);
            }
        });
        it("fails a server that does not verify hostnames or incoming RPC", () => {
            const props = editConfigMap(serverConfigMap(), (c) => {
                c.tls.internal_rpc.verify_server_hostname = false;
                delete c.tls.internal_rpc.verify_incoming;
            });
            const v = check(tlsVerification, TYPES.configMap, props);
            assert.strictEqual(v.length, 2, v.join("\n"));
            assert.match(v.join("\n"), /verify_server_hostname/);
        });
        it("fails a VM host whose bundled config turns off verify_outgoing", () => {
            const props = vmClient();
            props.stdin = editBundle(props.stdin as string, MAIN, (c) => ({ ...c, tls: { ...c.tls, defaults: {} } }));
            const v = check(tlsVerification, TYPES.command, props);
            assert.ok(
                v.some((m) => /stdin file \/etc\/consul.d\/consul.json: tls.defaults.verify_outgoing/.test(m)),
                v.join("\n"),
            );
        });
        it("fails containers that skip verification (env or curl -k)", () => {
            const props = statefulSet();
            const container = props.spec.template.spec.containers[0] as { env: Props[]; args: string[] };
            container.env.push({ name: "CONSUL_HTTP_SSL_VERIFY", value: "false" });
            container.args.push("curl -sSk https://127.0.0.1:8501/v1/status/leader");
            assert.strictEqual(check(tlsVerification, TYPES.statefulSet, props).length, 2);
        });
    });

    describe("consul-gossip-encryption", () => {
        it("passes the real configs and secret fragments", () => {
            assert.deepStrictEqual(check(gossipEncryption, TYPES.configMap, serverConfigMap()), []);
            assert.deepStrictEqual(check(gossipEncryption, TYPES.secret, serverSecret()), []);
            assert.deepStrictEqual(check(gossipEncryption, TYPES.command, vmServer()), []);
        });
        it("fails an agent that does not verify gossip encryption", () => {
            const props = editConfigMap(clientConfigMap(), (c) => (c.encrypt_verify_incoming = false));
            assert.deepStrictEqual(check(gossipEncryption, TYPES.configMap, props), [
                'data["client.json"]: encrypt_verify_incoming is not true.',
            ]);
        });
        it("fails a secret fragment with a key of the wrong length, and a VM bundle without one", () => {
            const secret = serverSecret();
            secret.stringData["secret.json"] = JSON.stringify({ encrypt: Buffer.alloc(20).toString("base64") });
            assert.strictEqual(check(gossipEncryption, TYPES.secret, secret).length, 1);
            const vm = vmServer();
            vm.stdin = editBundle(vm.stdin as string, GOSSIP, () => undefined);
            assert.match(check(gossipEncryption, TYPES.command, vm).join("\n"), /without a secret fragment/);
        });
        it("accepts 16, 24 and 32-byte keys only", () => {
            for (const n of [16, 24, 32]) assert.ok(isValidGossipKey(Buffer.alloc(n, 1).toString("base64")));
            for (const bad of [Buffer.alloc(31).toString("base64"), "not base64!", "", undefined]) {
                assert.ok(!isValidGossipKey(bad), String(bad));
            }
        });
    });

    describe("consul-acl-default-deny", () => {
        const allow = () => editConfigMap(serverConfigMap(), (c) => (c.acl.default_policy = "allow"));
        it("passes deny in prod, and allow in dev/test stacks", () => {
            assert.deepStrictEqual(check(aclDefaultDeny, TYPES.configMap, serverConfigMap(), "prod"), []);
            assert.deepStrictEqual(check(aclDefaultDeny, TYPES.configMap, allow(), "dev"), []);
            assert.deepStrictEqual(check(aclDefaultDeny, TYPES.configMap, allow(), "test-eu"), []);
        });
        it("fails allow, or ACLs off, outside dev", () => {
            assert.strictEqual(check(aclDefaultDeny, TYPES.configMap, allow(), "prod").length, 1);
            const off = editConfigMap(serverConfigMap(), (c) => (c.acl.enabled = false));
            assert.strictEqual(check(aclDefaultDeny, TYPES.configMap, off, "staging").length, 1);
            const vm = vmServer();
            vm.stdin = editBundle(vm.stdin as string, MAIN, (c) => ({
                ...c,
                acl: { ...c.acl, default_policy: "allow" },
            }));
            assert.strictEqual(check(aclDefaultDeny, TYPES.command, vm, "prod").length, 1);
        });
    });

    describe("consul-pinned-ssh-host-keys", () => {
        it("passes the prod stack's commands (every host pinned), and unpinned ones in dev stacks", () => {
            assert.deepStrictEqual(check(pinnedSshHostKeys, TYPES.command, vmServer(), "prod"), []);
            assert.deepStrictEqual(check(pinnedSshHostKeys, TYPES.command, vmClient(), "prod"), []);
            const unpinned = vmServer();
            delete (unpinned.connection as Props).hostKey;
            assert.deepStrictEqual(check(pinnedSshHostKeys, TYPES.command, unpinned, "dev-alice"), []);
        });
        it("fails a command outside dev whose connection accepts any host key", () => {
            const unpinned = vmServer();
            delete (unpinned.connection as Props).hostKey;
            const violations = check(pinnedSshHostKeys, TYPES.command, unpinned, "prod");
            assert.strictEqual(violations.length, 1);
            assert.match(violations[0], /connection to 10\.20\.0\.11 accepts any host key/);
            const junk = vmServer();
            (junk.connection as Props).hostKey = "SHA256:abc";
            assert.strictEqual(check(pinnedSshHostKeys, TYPES.command, junk, "devops").length, 1);
        });
    });

    describe("consul-odd-server-count", () => {
        it("passes 3 servers", () => {
            assert.deepStrictEqual(check(oddServerCount, TYPES.statefulSet, statefulSet()), []);
            assert.deepStrictEqual(check(oddServerCount, TYPES.configMap, serverConfigMap()), []);
            assert.deepStrictEqual(check(oddServerCount, TYPES.command, vmServer()), []);
        });
        it("fails 4 replicas and bootstrap_expect 2", () => {
            const sts = statefulSet();
            sts.spec.replicas = 4;
            assert.strictEqual(check(oddServerCount, TYPES.statefulSet, sts).length, 1);
            const config = editConfigMap(serverConfigMap(), (c) => (c.bootstrap_expect = 2), "startup-only.json");
            assert.strictEqual(check(oddServerCount, TYPES.configMap, config).length, 1);
        });
    });

    describe("consul-container-resources", () => {
        it("passes the server StatefulSet, the client DaemonSet (with its init container) and the ACL Job", () => {
            assert.deepStrictEqual(check(containerResources, TYPES.statefulSet, statefulSet()), []);
            assert.deepStrictEqual(check(containerResources, TYPES.daemonSet, daemonSet()), []);
            assert.deepStrictEqual(check(containerResources, TYPES.job, find("dev", TYPES.job, "acl")), []);
        });
        it("fails a Consul container or init container without limits, and ignores other apps", () => {
            const ds = daemonSet();
            delete ds.spec.template.spec.initContainers[0].resources.limits;
            assert.deepStrictEqual(check(containerResources, TYPES.daemonSet, ds), [
                'initContainers "data-dir-owner": no resources limits.cpu, limits.memory.',
            ]);
            const app = {
                metadata: { labels: {} },
                spec: { template: { spec: { containers: [{ name: "web", image: "nginx" }] } } },
            };
            assert.deepStrictEqual(check(containerResources, TYPES.deployment, app), []);
            app.spec.template.spec.containers[0].image = "hashicorp/consul:1.16.2";
            assert.strictEqual(check(containerResources, TYPES.deployment, app).length, 1);
        });
    });

    describe("consul-no-secret-in-configmap-or-args", () => {
        it("passes the real ConfigMaps, workloads and remote commands", () => {
            for (const r of [...stacks.dev.mocks.resources, ...stacks.prod.mocks.resources]) {
                assert.deepStrictEqual(check(noSecretInConfigMapOrArgs, r.type, r.inputs), [], r.name);
            }
        });
        it("fails a gossip key or tokens in a ConfigMap", () => {
            const withKey = editConfigMap(serverConfigMap(), (c) => (c.encrypt = Buffer.alloc(32).toString("base64")));
            assert.match(check(noSecretInConfigMapOrArgs, TYPES.configMap, withKey).join(), /gossip key/);
            const withTokens = editConfigMap(serverConfigMap(), (c) => (c.acl.tokens = { agent: "x" }));
            assert.match(check(noSecretInConfigMapOrArgs, TYPES.configMap, withTokens).join(), /acl.tokens/);
        });
        it("fails secrets on a container command line or in a literal token env var", () => {
            const sts = statefulSet();
            const container = sts.spec.template.spec.containers[0] as { env: Props[]; args: string[] };
            container.args.push("-encrypt=" + Buffer.alloc(32).toString("base64"));
            container.env.push({ name: "CONSUL_HTTP_TOKEN", value: "c0ffee00-0000-0000-0000-000000000000" });
            assert.strictEqual(check(noSecretInConfigMapOrArgs, TYPES.statefulSet, sts).length, 2);
        });
        it("fails a private key in a remote command line", () => {
            const vm = vmServer();
            vm.create = `${String(vm.create)}\ncat <<EOF\n-----BEGIN EC PRIVATE KEY-----\nabc\nEOF`;
            assert.match(check(noSecretInConfigMapOrArgs, TYPES.command, vm).join(), /create holds a private key/);
        });
    });

    describe("stack rules", () => {
        const resourcesOf = (stack: string) => stacks[stack].mocks.resources.map((r) => asPolicyResource(r, stack));
        const caKeyPem = (stack: string) =>
            String(
                stacks[stack].mocks.ofType(TYPES.selfSignedCert).find((r) => r.state.isCaCertificate === true)?.state
                    .privateKeyPem,
            );
        const extra = (type: string, props: Props): PolicyResource =>
            ({ type, name: "leak", urn: urnOf("prod", type, "leak"), props }) as unknown as PolicyResource;

        it("consul-ca-key-confined passes the real stacks and fails the CA key anywhere else, in any encoding", () => {
            for (const stack of ["dev", "prod"])
                assert.deepStrictEqual(checkStack(caKeyConfined, resourcesOf(stack)), []);
            const pem = caKeyPem("dev");
            assert.match(pem, /PRIVATE KEY/);
            const inSecret = extra(TYPES.secret, { data: { "ca.key": Buffer.from(pem).toString("base64") } });
            const inCsr = extra("tls:index/certRequest:CertRequest", { privateKeyPem: pem });
            const violations = checkStack(caKeyConfined, [...resourcesOf("dev"), inSecret, inCsr]);
            assert.strictEqual(violations.length, 2, violations.join("\n"));
            // A VM bundle carries files base64-encoded per line: still found.
            const vm = clone(
                stacks.prod.mocks.resources.find((r) => r.type === TYPES.command && r.name.includes("server"))!,
            );
            (vm.state as Props).stdin =
                `${String(vm.state.stdin)}/etc/consul.d/tls/ca-key.pem 0600 root root ${Buffer.from(caKeyPem("prod")).toString("base64")}\n`;
            const prod = resourcesOf("prod");
            assert.strictEqual(checkStack(caKeyConfined, [...prod, asPolicyResource(vm, "prod")]).length, 1);
        });

        it("consul-no-known-secret-exposed fails the generated gossip key or a token in a ConfigMap or args", () => {
            const resources = resourcesOf("dev");
            const gossip = String(stacks.dev.outputs.gossipKey);
            const token = String(stacks.dev.outputs.aclManagementToken);
            const inConfigMap = extra(TYPES.configMap, { data: { "x.txt": `key is ${gossip}` } });
            const inArgs = extra(TYPES.deployment, {
                spec: { template: { spec: { containers: [{ name: "app", args: ["--token", token] }] } } },
            });
            const v = checkStack(noKnownSecretExposed, [...resources, inConfigMap, inArgs]);
            assert.strictEqual(v.length, 2, v.join("\n"));
        });
    });
});
