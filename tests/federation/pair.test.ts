// WAN federation (issue 15) under the mocks, with real certificates: the primary's intermediate CA,
// replication token step and secret `federation` output, and a secondary evaluated against that
// output through a mocked StackReference: its chain to the primary's root (checked by openssl), its
// agents' WAN and replication config, and no CA, gossip key or management token of its own.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { PolicyResource } from "@pulumi/policy";
import type { FederationExport } from "../../components/federation";
import { REPLICATION_POLICY_NAME, replicationPolicyRules, replicationTokenAccessorId } from "../../components/security";
import { PATHS } from "../../components/vm/paths";
import { COMMAND_TYPE } from "../command-diff";
import { ConsulMocks, EvaluatedStack, evaluateProgram, RecordedResource, withOperatorHome } from "../mocks";
import { parseBundle, prodStackWithHosts, withPinnedKeys } from "../vm/fixtures";
import { asPolicyResource, checkStack, urnOf } from "../policy-support";
import { caKeyConfined, noKnownSecretExposed, TYPES } from "../../policy/rules";
import { pemBody } from "../../policy/stack-rules";

const PRIMARY_STACK = "organization/consul/dc1";

/** Answers the secondary's StackReference with the primary's outputs, `federation` secret. */
class SecondaryMocks extends ConsulMocks {
    constructor(private readonly primaryOutputs: Record<string, unknown>) {
        super();
    }
    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        if (args.type === "pulumi:pulumi:StackReference") {
            assert.strictEqual(args.inputs.name, PRIMARY_STACK);
            const state = { name: args.inputs.name, outputs: this.primaryOutputs, secretOutputNames: ["federation"] };
            return { id: PRIMARY_STACK, state };
        }
        return super.newResource(args);
    }
}

function openssl(args: string[]): { code: number; out: string } {
    const r = spawnSync("openssl", args, { encoding: "utf8" });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/**
 * openssl verify of a certificate file's leaf through the intermediate after it, up to `caPem`;
 * `check` adds what to verify (-verify_hostname, -verify_ip, -x509_strict, -purpose).
 */
function verifyChain(dir: string, certFilePem: string, caPem: string, check: string[]): { code: number; out: string } {
    const [leaf, intermediate] = pemBlocks(certFilePem);
    const file = (name: string, pem: string) => {
        fs.writeFileSync(path.join(dir, name), pem);
        return path.join(dir, name);
    };
    return openssl([
        "verify",
        ...check,
        "-CAfile",
        file("ca.pem", caPem),
        "-untrusted",
        file("chain.pem", intermediate),
        file("leaf.pem", leaf),
    ]);
}

/** The PEM blocks of a bundle, in order. */
function pemBlocks(pem: string): string[] {
    return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** A script header's line for one parameter, as it reads inside the `sh -c '...'` wrapper. */
const param = (name: string, value: string) => `readonly ${name}='"'"'${value}'"'"'`;

const agentCommands = (stack: EvaluatedStack, role: "server" | "client"): RecordedResource[] =>
    stack.mocks.ofType(COMMAND_TYPE).filter((c) => c.name.startsWith(`consul-vm-${role}-`));

interface AgentJson {
    datacenter?: string;
    primary_datacenter?: string;
    retry_join_wan?: string[];
    acl?: { enable_token_replication?: boolean; tokens?: { replication?: string } };
}

describe("a federated pair under the mocks (real certificates)", function () {
    this.timeout(120_000);
    let operator: ReturnType<typeof withOperatorHome>;
    let primary: EvaluatedStack;
    let secondary: EvaluatedStack;
    let exported: FederationExport;
    let tmp: string;
    before(async () => {
        operator = withOperatorHome();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "federation-test-"));
        primary = await evaluateProgram(
            { ...prodStackWithHosts(3, 1), federationSecondaries: '["dc2"]' },
            { stack: "dc1" },
        );
        exported = primary.outputs.federation as FederationExport;
        // withPinnedKeys pins a key for each listed host, dc2's names included.
        const config = withPinnedKeys({
            ...prodStackWithHosts(1, 1),
            serverHosts: JSON.stringify(["dc2-server-1=10.30.0.11"]),
            clientHosts: JSON.stringify(["dc2-app-1=10.30.1.21", "dc2-app-2=10.30.1.22"]),
            datacenter: "dc2",
            federationPrimaryStack: PRIMARY_STACK,
        });
        secondary = await evaluateProgram(config, { stack: "dc2", mocks: new SecondaryMocks(primary.outputs) });
    });
    after(() => {
        operator.restore();
        fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("the primary exports a secret federation output with an intermediate CA for dc2", () => {
        assert.ok(primary.secretOutputs.has("federation"));
        assert.strictEqual(exported.datacenter, "dc1");
        assert.deepStrictEqual(exported.wanJoin, ["10.20.0.11:8302", "10.20.0.12:8302", "10.20.0.13:8302"]);
        assert.strictEqual(exported.caCertPem, primary.outputs.caCertPem);
        assert.strictEqual(exported.gossipKey, primary.outputs.gossipKey);
        assert.deepStrictEqual(Object.keys(exported.intermediates), ["dc2"]);
        fs.writeFileSync(path.join(tmp, "root.pem"), exported.caCertPem);
        fs.writeFileSync(path.join(tmp, "intermediate.pem"), exported.intermediates.dc2.certPem);
        const verified = openssl([
            "verify",
            "-x509_strict",
            "-CAfile",
            path.join(tmp, "root.pem"),
            path.join(tmp, "intermediate.pem"),
        ]);
        assert.strictEqual(verified.code, 0, verified.out);
        const ext = openssl([
            "x509",
            "-noout",
            "-ext",
            "basicConstraints,keyUsage",
            "-in",
            path.join(tmp, "intermediate.pem"),
        ]);
        assert.match(ext.out, /CA:TRUE/);
        assert.match(ext.out, /Certificate Sign/);
    });

    it("the primary creates the replication token after the ACL step, its SecretID on secret stdin", () => {
        const step = primary.mocks.byName("consul-federation-replication-acl");
        assert.strictEqual(step.inputs.stdin, exported.replicationToken);
        assert.ok(step.dependencies.some((urn) => urn.endsWith("::consul-vm-acl")));
        const create = String(step.inputs.create);
        assert.ok(create.includes(param("POLICY_NAME", REPLICATION_POLICY_NAME)), create.slice(0, 400));
        assert.ok(create.includes(param("ACCESSOR_ID", replicationTokenAccessorId("dc1"))));
        assert.ok(!create.includes(exported.replicationToken), "the token is in the script");
        // Replication, and what the secondary's steps do with it as their admin token (members,
        // keyring steps, consul leave on removal): each found missing on real hosts otherwise.
        assert.deepStrictEqual(replicationPolicyRules(), {
            acl: "write",
            operator: "write",
            keyring: "write",
            service_prefix: { "": { policy: "read", intentions: "read" } },
            node_prefix: { "": { policy: "read" } },
            agent_prefix: { "": { policy: "write" } },
        });
        // Federation turned off (or the primary destroyed): the delete removes the token by its ID.
        const remove = String(step.inputs.delete);
        assert.ok(remove.includes(param("ACCESSOR_ID", replicationTokenAccessorId("dc1"))));
        assert.ok(remove.includes("/v1/acl/token/$ACCESSOR_ID"));
    });

    it("a standalone stack exports an empty federation output and has no federation resource", async () => {
        const alone = await evaluateProgram(prodStackWithHosts(3, 1), { stack: "prod" });
        assert.deepStrictEqual(alone.outputs.federation, {});
        assert.ok(alone.secretOutputs.has("federation"));
        assert.deepStrictEqual(
            alone.mocks.resources.filter((r) => /federation|intermediate|replication/.test(r.name)).map((r) => r.name),
            [],
        );
    });

    it("the secondary has no CA, gossip key or management token of its own", () => {
        const names = secondary.mocks.resources.map((r) => r.name);
        assert.deepStrictEqual(
            names.filter((n) => /-ca($|-)|gossip|management/.test(n)),
            [],
        );
        assert.strictEqual(secondary.outputs.caCertPem, primary.outputs.caCertPem);
        assert.strictEqual(secondary.outputs.gossipKey, primary.outputs.gossipKey);
        assert.strictEqual(secondary.outputs.aclManagementToken, "");
        assert.ok(secondary.secretOutputs.has("gossipKey"));
    });

    it("the secondary's server certificate chains to the primary's root through dc2's intermediate", () => {
        const [server] = agentCommands(secondary, "server");
        const files = parseBundle(String(server.inputs.stdin));
        const certFile = files.find((f) => f.path === PATHS.serverCert)?.content ?? "";
        const [, intermediate, ...rest] = pemBlocks(certFile);
        assert.deepStrictEqual(rest, []);
        assert.strictEqual(intermediate.trim(), exported.intermediates.dc2.certPem.trim());
        const ca = files.find((f) => f.path === PATHS.caFile)?.content ?? "";
        const verify = (hostname: string, strict: string[]) =>
            verifyChain(tmp, certFile, ca, [...strict, "-verify_hostname", hostname]);
        const ok = verify("server.dc2.consul", ["-x509_strict", "-purpose", "sslserver"]);
        assert.strictEqual(ok.code, 0, ok.out);
        // And not for dc1's name: a dc2 server cannot pose as a primary server.
        const asDc1 = verify("server.dc1.consul", []);
        assert.notStrictEqual(asDc1.code, 0);
        assert.match(asDc1.out, /hostname mismatch/);
    });

    it("the secondary's servers join the primary over WAN, replicate ACLs and never bootstrap them", () => {
        const [server] = agentCommands(secondary, "server");
        const files = parseBundle(String(server.inputs.stdin));
        const json = (p: string) => JSON.parse(files.find((f) => f.path === p)?.content ?? "{}") as AgentJson;
        const main = json(PATHS.mainConfig);
        assert.strictEqual(main.datacenter, "dc2");
        assert.strictEqual(main.primary_datacenter, "dc1");
        assert.strictEqual(main.acl?.enable_token_replication, true);
        assert.deepStrictEqual(json(PATHS.joinConfig).retry_join_wan, exported.wanJoin);
        assert.strictEqual(json(PATHS.secretConfig).acl?.tokens?.replication, exported.replicationToken);
        const admin = files.find((f) => f.path === PATHS.managementTokenFile);
        assert.strictEqual(admin?.content, exported.replicationToken + "\n");
        assert.strictEqual(admin?.mode, "0600");
        assert.ok(String(server.inputs.create).includes(param("ACL_BOOTSTRAP", "0")));
        const [client] = agentCommands(secondary, "client");
        const clientFiles = parseBundle(String(client.inputs.stdin));
        const clientMain = JSON.parse(
            clientFiles.find((f) => f.path === PATHS.mainConfig)?.content ?? "{}",
        ) as AgentJson;
        assert.strictEqual(clientMain.primary_datacenter, "dc1");
        assert.ok(!clientFiles.some((f) => f.content.includes(exported.replicationToken)));
        // The primary's own servers bootstrap.
        assert.ok(String(agentCommands(primary, "server")[0].inputs.create).includes(param("ACL_BOOTSTRAP", "1")));
    });

    it("the secondary's clients serve HTTPS with a certificate each from its intermediate, valid for 127.0.0.1 and the host's address", () => {
        // Consul 1.16's Connect CA in a secondary issues auto_encrypt certificates with an empty
        // issuer (hashicorp/consul#16202), which curl and Node refuse; the HTTPS listener uses ours.
        const [client] = agentCommands(secondary, "client");
        const files = parseBundle(String(client.inputs.stdin));
        const file = (p: string) => files.find((f) => f.path === p);
        const main = JSON.parse(file(PATHS.mainConfig)?.content ?? "{}") as {
            tls?: { https?: { cert_file?: string; key_file?: string } };
        };
        assert.deepStrictEqual(main.tls?.https, {
            cert_file: PATHS.clientHttpsCert,
            key_file: PATHS.clientHttpsKey,
            verify_incoming: false,
        });
        assert.strictEqual(file(PATHS.clientHttpsKey)?.mode, "0640");
        const certFile = file(PATHS.clientHttpsCert)?.content ?? "";
        const verifyIp = (ip: string) =>
            verifyChain(tmp, certFile, exported.caCertPem, ["-x509_strict", "-purpose", "sslserver", "-verify_ip", ip]);
        // As auto_encrypt's certificate in the primary: Prometheus scrapes each client by address.
        for (const ip of ["127.0.0.1", "10.30.1.21"]) {
            const ok = verifyIp(ip);
            assert.strictEqual(ok.code, 0, `${ip}: ${ok.out}`);
        }
        const other = verifyIp("10.30.1.22");
        assert.notStrictEqual(other.code, 0, "dc2-app-1's certificate is valid for dc2-app-2's address");
        assert.match(other.out, /IP address mismatch/);
        // A standalone or primary datacenter's clients keep the auto_encrypt certificate on HTTPS.
        const primaryClient = parseBundle(String(agentCommands(primary, "client")[0].inputs.stdin));
        assert.ok(!primaryClient.some((f) => f.path === PATHS.clientHttpsCert));
    });

    it("the policy pack sees the secrets the secondary took from the primary, and a leak of each", () => {
        // The StackReference as the analyzer gives it: the primary's outputs, secrets unwrapped.
        const reference = {
            type: TYPES.stackReference,
            name: PRIMARY_STACK,
            urn: urnOf("dc2", TYPES.stackReference, PRIMARY_STACK),
            props: { name: PRIMARY_STACK, outputs: primary.outputs },
        } as unknown as PolicyResource;
        const resources = [...secondary.mocks.resources.map((r) => asPolicyResource(r, "dc2")), reference];
        assert.deepStrictEqual(checkStack(caKeyConfined, resources), []);
        assert.deepStrictEqual(checkStack(noKnownSecretExposed, resources), []);
        const leak = (name: string, value: string) =>
            ({
                type: TYPES.configMap,
                name,
                urn: urnOf("dc2", TYPES.configMap, name),
                props: { data: { "leak.txt": value } },
            }) as unknown as PolicyResource;
        const intermediateKey = exported.intermediates.dc2.keyPem;
        assert.ok(pemBody(intermediateKey).length > 16);
        const withLeaks = [
            ...resources,
            leak("gossip", exported.gossipKey),
            leak("replication", `token ${exported.replicationToken}`),
            leak("intermediate", Buffer.from(intermediateKey).toString("base64")),
        ];
        assert.deepStrictEqual(checkStack(caKeyConfined, withLeaks), [
            `${TYPES.configMap} intermediate holds the CA private key.`,
        ]);
        assert.deepStrictEqual(checkStack(noKnownSecretExposed, withLeaks), [
            `${TYPES.configMap} gossip data holds a generated secret.`,
            `${TYPES.configMap} replication data holds a generated secret.`,
            `${TYPES.configMap} intermediate data holds a generated secret.`,
        ]);
    });
});
