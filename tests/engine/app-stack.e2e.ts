// An application stack over a real StackReference, with the real Pulumi engine (scripts/engine):
// the Consul stack (topology vm, consul:appTokens [web]) on two systemd-nspawn hosts, then
// examples/app-vm in the same file backend, which reads the client environment and the app's
// token through `organization/consul/<stack>` and writes a root-only environment file on the
// client host. With only that file sourced, the consul CLI and curl register the service and use
// the app's KV prefix, and nothing outside its scope. Rotating the app token in the Consul stack
// shows up in the app stack's next preview as an update of the env-file command. Run as root:
// npx mocha --no-config --require ts-node/register/transpile-only --extension ts --timeout 5400000 --exit tests/engine/app-stack.e2e.ts

import * as assert from "assert";
import { vmStackConfig } from "../e2e/checks";
import { api, Artifacts, ensureArtifacts, Hosts, log, Mirror, requirePrerequisites } from "../e2e/infra";
import { anotherProject } from "./app-project";
import { nameOf, PulumiProject, Update } from "./pulumi-cli";
import { appPolicyName, appTokenAccessorId } from "../../components/security/app-policy";

const SERVER = 1;
const CLIENT = 2;
const STACK = "e2e";
const APP = "web";
const ENV_FILE = `/etc/consul-app/${APP}.env`;
/** What the app stack copies: its own folder and what its program imports. */
const APP_ENTRIES = ["package.json", "tsconfig.json", "tsconfig.pulumi.json", "app", "components", "examples/app-vm"];
const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;

const figures: string[] = [];
function figure(line: string): void {
    figures.push(line);
    log(`FIGURE ${line}`);
}

/** On the client, with nothing but the env file: `set -a; . <file>` in an empty environment. */
function withEnvFileOnly(script: string): string {
    const inner = `set -a; . ${ENV_FILE}; set +a; ${script}`;
    return `env -i PATH=/usr/local/bin:/usr/bin:/bin sh -c '${inner.replace(/'/g, `'"'"'`)}'`;
}

/** curl with the token header from the env, passed on stdin (a builtin printf): never on argv. */
const CURL = `printf 'header = "X-Consul-Token: %s"\\n' "$CONSUL_HTTP_TOKEN" | curl -sS -f --max-time 10 --cacert "$CONSUL_CACERT" --config -`;

describe("An app stack over a real StackReference to the Consul stack (real engine, VM hosts)", function () {
    this.timeout(60 * 60_000);
    let artifacts: Artifacts;
    let hosts: Hosts;
    let mirror: Mirror;
    let consul: PulumiProject;
    let app: PulumiProject;
    let ca = "";
    let token = "";
    let oldToken = "";
    let config: Record<string, string>;
    const texts: { what: string; text: string }[] = [];
    const debugLines: string[] = [];

    const addr = (i: number) => hosts.hosts[i - 1].address;

    function succeeded(update: Update, what: string): Update {
        // The SDK's debug-level messages are kept apart, as in engine.e2e.ts scenario 4: it logs
        // each RegisterResource response there, secrets in plaintext (the CLI shows them only with --debug).
        const isDebug = (line: string) =>
            line.trim() !== "" &&
            (JSON.parse(line) as { diagnosticEvent?: { severity: string } }).diagnosticEvent?.severity === "debug";
        const lines = update.eventLog.split("\n");
        texts.push(
            { what: `${what}'s output`, text: update.output },
            { what: `${what}'s event log`, text: lines.filter((l) => !isDebug(l)).join("\n") },
        );
        debugLines.push(...lines.filter(isDebug));
        assert.strictEqual(update.code, 0, `${what} failed:\n${update.output.slice(-6000)}`);
        return update;
    }

    /** Non-"same" steps of an update, as "<op> <name>". */
    function changed(update: Update): string[] {
        return update.steps
            .filter((s) => s.op !== "same" && !s.type.startsWith("pulumi:"))
            .map((s) => `${s.op} ${nameOf(s.urn)}`)
            .sort();
    }

    async function appTokenOutput(): Promise<string> {
        const plain = JSON.parse(await consul.must(["stack", "output", "--stack", STACK, "--json"])) as Record<
            string,
            unknown
        >;
        assert.strictEqual(plain.appTokens, "[secret]", "appTokens is not a secret output");
        const outputs = await consul.outputs();
        ca = String(outputs.caCertPem);
        const value = (outputs.appTokens as Record<string, string>)[APP];
        assert.match(value, UUID);
        return value;
    }

    before(async function () {
        requirePrerequisites();
        artifacts = await ensureArtifacts();
        const t0 = Date.now();
        hosts = await Hosts.up(2);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        figure(`2 hosts up and the release mirror: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        const release = { mirrorUrl: mirror.url, consulVersion: artifacts.consulVersion };
        config = vmStackConfig(hosts, { servers: [SERVER], clients: [CLIENT] }, release, {
            appTokens: JSON.stringify([APP]),
        });
        consul = await PulumiProject.create(STACK, config);
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        consul?.dispose();
        log("figures:\n  " + figures.join("\n  "));
    });

    it("1. the Consul stack creates the app's token, scoped to its service and KV prefix, exported as a secret", async () => {
        const update = succeeded(await consul.update("up"), "Consul pulumi up");
        figure(`1. Consul stack pulumi up: ${(update.ms / 1000).toFixed(1)} s, ${update.steps.length} resources`);
        assert.ok(changed(update).includes("create consul-vm-app-token-web"), changed(update).join("\n"));
        token = await appTokenOutput();
        const self = await api(addr(SERVER), "/v1/acl/token/self", { ca, token });
        assert.strictEqual(self.status, 200, self.body);
        const info = JSON.parse(self.body) as { AccessorID: string; Policies: { Name: string }[] };
        assert.strictEqual(info.AccessorID, appTokenAccessorId(APP));
        assert.deepStrictEqual(
            info.Policies.map((p) => p.Name),
            [appPolicyName(APP)],
        );
        // A second up with no change runs nothing.
        const again = succeeded(await consul.update("up"), "Consul no-change pulumi up");
        assert.deepStrictEqual(changed(again), []);
    });

    it("2. the app stack reads the Consul stack through a StackReference and writes a root-only env file", async () => {
        app = await anotherProject(consul, "app-tree", APP_ENTRIES, "examples/app-vm", "dev", {
            consulStack: `organization/consul/${STACK}`,
            app: APP,
            host: addr(CLIENT),
            sshUser: "root",
            sshPrivateKeyPath: hosts.sshKeyPath,
            sshHostKey: hosts.hostKeys[CLIENT - 1],
        });
        const update = succeeded(await app.update("up"), "app pulumi up");
        figure(`2. app stack pulumi up: ${(update.ms / 1000).toFixed(1)} s; ${changed(update).join(", ")}`);
        assert.deepStrictEqual(changed(update), ["create consul-app-env"]);
        const outputs = await app.outputs();
        assert.strictEqual(outputs.envFilePath, ENV_FILE);
        assert.strictEqual(outputs.consulHttpAddr, "https://127.0.0.1:8501");
        assert.strictEqual(
            (await hosts.run(CLIENT, `stat -c '%a %U %G' /etc/consul-app ${ENV_FILE}`)).trim(),
            "700 root root\n600 root root",
        );
        const content = await hosts.run(CLIENT, `cat ${ENV_FILE}`);
        assert.strictEqual(
            content,
            `CONSUL_HTTP_ADDR=https://127.0.0.1:8501\nCONSUL_CACERT=/etc/consul.d/tls/agent-ca.pem\nCONSUL_HTTP_TOKEN=${token}\n`,
        );
        // The token is in the state only encrypted.
        assert.ok(
            !(await app.exportState(false)).includes(token),
            "the app token is in the app stack's state in plaintext",
        );
        const again = succeeded(await app.update("up"), "app no-change pulumi up");
        assert.deepStrictEqual(changed(again), []);
    });

    it("3. with only the env file, the consul CLI and curl register the service and use the app's KV prefix, nothing else", async () => {
        const out = await hosts.run(
            CLIENT,
            withEnvFileOnly(
                `consul services register -name=${APP} -id=${APP}-1 -port=8080 && ` +
                    `consul kv put ${APP}/greeting hello && consul kv get ${APP}/greeting && ` +
                    `${CURL} -X PUT --data-binary from-curl "$CONSUL_HTTP_ADDR/v1/kv/${APP}/curl" && echo && ` +
                    `${CURL} "$CONSUL_HTTP_ADDR/v1/kv/${APP}/curl?raw" && echo && ` +
                    `${CURL} "$CONSUL_HTTP_ADDR/v1/agent/services"`,
            ),
        );
        const lines = out.trim().split("\n");
        assert.match(lines[0], /Registered service: web/);
        assert.match(lines[1], /Success! Data written to: web\/greeting/);
        assert.strictEqual(lines[2], "hello");
        assert.strictEqual(lines[3], "true");
        assert.strictEqual(lines[4], "from-curl");
        assert.strictEqual(
            (JSON.parse(lines[5]) as Record<string, { Service: string; Port: number }>)[`${APP}-1`].Port,
            8080,
        );
        // The agent syncs the registration to the catalog, where the management token sees it.
        let catalog = "";
        for (let k = 0; k < 30 && !catalog.includes(`"${APP}-1"`); k++) {
            const r = await api(addr(SERVER), `/v1/catalog/service/${APP}`, {
                ca,
                token: (await consul.outputs()).aclManagementToken as string,
            });
            catalog = r.body;
            if (!catalog.includes(`"${APP}-1"`)) await new Promise((r) => setTimeout(r, 1000));
        }
        assert.match(catalog, new RegExp(`"ServiceID":"${APP}-1"`));
        // Outside its scope, the same environment is refused.
        const denied = await Promise.all(
            [
                "consul kv put other/x y",
                "consul services register -name=db -port=5432",
                `${CURL} "$CONSUL_HTTP_ADDR/v1/kv/webshop/x"`,
                `unset CONSUL_HTTP_TOKEN; consul kv get ${APP}/greeting`,
            ].map((cmd) => hosts.exec(CLIENT, withEnvFileOnly(cmd))),
        );
        for (const [k, r] of denied.entries()) {
            assert.notStrictEqual(r.code, 0, `denied command ${k} succeeded: ${r.stdout}`);
            assert.match(
                r.stdout + r.stderr,
                /Permission denied|403|ACL not found/,
                `denied command ${k}: ${r.stdout}${r.stderr}`,
            );
        }
        figure(
            `3. with only ${ENV_FILE} sourced: register, KV put/get (CLI and curl) work; 4 out-of-scope calls refused`,
        );
    });

    it("4. the app token rotated in the Consul stack shows up in the app stack's next preview, and its up installs it", async () => {
        const state = JSON.parse(await consul.exportState(false)) as { deployment: { resources: { urn: string }[] } };
        const seed = state.deployment.resources.find((r) => r.urn.endsWith(`::consul-vm-app-tokens-${APP}`));
        assert.ok(seed, "no app token seed in the Consul stack's state");
        const rotate = succeeded(
            await consul.update("up", ["--replace", seed.urn]),
            "Consul pulumi up --replace <seed>",
        );
        assert.deepStrictEqual(
            changed(rotate).filter((c) => !c.includes(`app-tokens-${APP}`)),
            [`update consul-vm-app-token-${APP}`],
        );
        oldToken = token;
        token = await appTokenOutput();
        assert.notStrictEqual(token, oldToken);
        assert.strictEqual((await api(addr(SERVER), "/v1/acl/token/self", { ca, token: oldToken })).status, 403);
        assert.strictEqual((await api(addr(SERVER), "/v1/acl/token/self", { ca, token })).status, 200);

        const preview = await app.run(["preview", "--stack", "dev"]);
        texts.push({ what: "app preview's output", text: preview.output });
        assert.strictEqual(preview.code, 0, preview.output.slice(-4000));
        assert.match(preview.output, /~ +command:remote:Command +consul-app-env +update/);
        // Nothing else in the app stack changes: the env file's content is all it deploys.
        assert.match(preview.output, /Resources:\s+~ 1 to update\s/);
        assert.doesNotMatch(preview.output, /to create|to delete|to replace/);
        figure(
            `4. app preview after the rotation: ${preview.output
                .split("\n")
                .find((l) => /consul-app-env/.test(l))
                ?.trim()}`,
        );

        const update = succeeded(await app.update("up"), "app pulumi up after the rotation");
        assert.deepStrictEqual(changed(update), ["update consul-app-env"]);
        assert.match(await hosts.run(CLIENT, `cat ${ENV_FILE}`), new RegExp(`^CONSUL_HTTP_TOKEN=${token}$`, "m"));
        assert.strictEqual((await hosts.run(CLIENT, withEnvFileOnly(`consul kv get ${APP}/greeting`))).trim(), "hello");
    });

    it("5. pulumi destroy of the app stack removes the env file; the app dropped from appTokens loses its token and policy; no token in any log", async () => {
        const update = succeeded(await app.update("destroy"), "app pulumi destroy");
        assert.deepStrictEqual(changed(update), ["delete consul-app-env"]);
        assert.strictEqual(
            (await hosts.exec(CLIENT, "test -e /etc/consul-app")).code,
            1,
            "/etc/consul-app is still there",
        );
        consul.setConfig({ ...config, appTokens: "[]" });
        const drop = succeeded(await consul.update("up"), "Consul pulumi up without the app");
        assert.deepStrictEqual(changed(drop), [
            "delete consul-vm-app-token-web",
            "delete consul-vm-app-tokens",
            "delete consul-vm-app-tokens-web",
        ]);
        const management = String((await consul.outputs()).aclManagementToken);
        assert.strictEqual((await api(addr(SERVER), "/v1/acl/token/self", { ca, token })).status, 403);
        const policies = await api(addr(SERVER), "/v1/acl/policies", { ca, token: management });
        assert.strictEqual(policies.status, 200, policies.body);
        const names = (JSON.parse(policies.body) as { Name: string }[]).map((p) => p.Name);
        assert.ok(!names.includes(appPolicyName(APP)) && names.includes("consul-agents"), names.join(", "));
        for (const secret of [token, oldToken]) {
            for (const t of texts) {
                const at = t.text.indexOf(secret);
                // Where it is, without printing it.
                if (at >= 0)
                    assert.fail(
                        `an app token is in ${t.what}, after: ${JSON.stringify(t.text.slice(Math.max(0, at - 300), at))}`,
                    );
            }
        }
        const withToken = debugLines.filter((l) => l.includes(token) || l.includes(oldToken)).length;
        figure(
            `5. ${texts.length} outputs and event logs searched: no app token; the SDK's debug-level messages (--debug only): ${debugLines.length}, ${withToken} with an app token; the env file and its directory removed`,
        );
    });
});
