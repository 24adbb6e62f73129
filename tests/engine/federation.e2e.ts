// Two federated VM datacenters (issue 15) with the real Pulumi engine on real hosts: stacks dc1
// (3 servers + 1 client, consul:federationSecondaries [dc2]) and dc2 (1 server + 1 client,
// consul:federationPrimaryStack organization/consul/dc1) of one project directory in one file
// backend, on six systemd-nspawn hosts on one bridge. It checks the WAN pool, cross-datacenter
// catalog and KV, ACL token replication, that the federation material stays secret, that WAN RPC
// verifies TLS (another CA; our CA for the wrong datacenter), a cut WAN link and its healing, a
// no-change re-run of both stacks, and that destroying dc2 leaves dc1 whole. Run as root:
// npx mocha --no-config --require ts-node/register/transpile-only --extension ts --timeout 5400000 --exit tests/engine/federation.e2e.ts

import * as assert from "assert";
import { randomUUID } from "crypto";
import { vmStackConfig } from "../e2e/checks";
import { api, ensureArtifacts, Figures, Hosts, leaderOf, Mirror, requirePrerequisites, waitFor } from "../e2e/infra";
import {
    DC1_CLIENT,
    DC1_SERVERS,
    DC2_CLIENT,
    DC2_SERVER,
    POLICY,
    seconds,
    TwoDatacenters,
    wanCut,
    wanTls,
} from "./federation-dcs";
import * as fed from "./federation-support";
import { PulumiProject } from "./pulumi-cli";
import type { FederationExport } from "../../components/federation/material";

const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;

describe("Two federated VM datacenters, one stack each (real engine, real hosts)", function () {
    this.timeout(90 * 60_000);
    const figures = new Figures();
    const suiteStart = Date.now();
    let hosts: Hosts;
    let mirror: Mirror;
    let dc1: PulumiProject;
    let dc2: PulumiProject;
    let dcs: TwoDatacenters;

    before(async function () {
        requirePrerequisites();
        const artifacts = await ensureArtifacts();
        const t0 = Date.now();
        hosts = await Hosts.up(6, { tmpPrefix: "consul-fed-" });
        dcs = new TwoDatacenters(hosts, figures);
        mirror = await Mirror.start(artifacts, hosts.bridgeAddr);
        figures.add(`6 hosts up and the release mirror: ${seconds(Date.now() - t0)} s`);
        const release = { mirrorUrl: mirror.url, consulVersion: artifacts.consulVersion };
        dc1 = await PulumiProject.create(
            "dc1",
            vmStackConfig(hosts, { servers: DC1_SERVERS, clients: [DC1_CLIENT] }, release, {
                datacenter: "dc1",
                federationSecondaries: JSON.stringify(["dc2"]),
            }),
        );
        // The second stack of the same project directory, in the same backend.
        dc2 = dc1.inSameBackend(dc1.dir, "dc2");
        await dc2.must(["stack", "init", "dc2", "--secrets-provider", "passphrase", "--non-interactive"]);
        dc2.setConfig(
            vmStackConfig(hosts, { servers: [DC2_SERVER], clients: [DC2_CLIENT] }, release, {
                datacenter: "dc2",
                federationPrimaryStack: "organization/consul/dc1",
            }),
        );
    });

    after(async function () {
        mirror?.stop();
        if (hosts) await hosts.down();
        dc1?.dispose();
        figures.add(`the whole suite: ${seconds(Date.now() - suiteStart)} s`);
        figures.print();
    });

    it("1. pulumi up of dc1 (the primary), then of dc2 (the secondary): dc1 answers ?dc=dc2", async () => {
        const up1 = dcs.succeeded(await dc1.update("up"), "dc1 pulumi up");
        figures.add(`1. dc1 pulumi up: ${seconds(up1.ms)} s, ${up1.steps.length} resources`);
        const out1 = await dc1.outputs();
        dcs.ca = String(out1.caCertPem);
        dcs.token = String(out1.aclManagementToken);
        dcs.gossipKey = String(out1.gossipKey);
        const federation = (dcs.federation = out1.federation as FederationExport);
        assert.strictEqual(federation.datacenter, "dc1");
        assert.strictEqual(federation.aclEnabled, true);
        assert.strictEqual(federation.caCertPem.trim(), dcs.ca.trim());
        assert.strictEqual(federation.gossipKey, dcs.gossipKey);
        assert.match(federation.replicationToken, UUID);
        assert.deepStrictEqual([...federation.wanJoin].sort(), DC1_SERVERS.map((i) => `${dcs.addr(i)}:8302`).sort());
        assert.deepStrictEqual(Object.keys(federation.intermediates), ["dc2"]);

        // dc1 is asked for dc2's catalog every 500 ms from the moment dc2's up starts.
        const { result: up2, answeredAfterMs } = await dcs.untilDc2Answers(async () =>
            dcs.succeeded(await dc2.update("up"), "dc2 pulumi up"),
        );
        figures.add(`1. dc2 pulumi up: ${seconds(up2.ms)} s, ${up2.steps.length} resources`);
        figures.add(`1. from dc2's pulumi up start to dc1 answering ?dc=dc2: ${seconds(answeredAfterMs)} s`);
        const out2 = await dc2.outputs();
        assert.strictEqual(String(out2.caCertPem).trim(), dcs.ca.trim(), "dc2's caCertPem is not dc1's root");
        assert.strictEqual(out2.gossipKey, dcs.gossipKey);
        assert.strictEqual(out2.aclManagementToken, "");
        assert.deepStrictEqual(out2.federation, {});
    });

    it("2. consul members -wan: the 4 servers of both datacenters, alive, named <node>.<dc>; no client", async () => {
        let seen: string[] = [];
        await waitFor(
            "dc1's WAN pool to hold the 4 servers alive",
            async () => {
                const all = await fed.wanMembers(dcs.addr(1), dcs.mgmt());
                seen = all.map((m) => `${m.Name} ${m.Status} ${m.Tags.dc}`).sort();
                return all.length === 4 && all.every((m) => m.Status === 1);
            },
            120_000,
            1000,
        ).catch((e: Error) => assert.fail(`${e.message}: ${seen.join(", ")}`));
        assert.deepStrictEqual(
            seen,
            dcs.wanNames().map((n) => `${n} 1 ${n.split(".")[1]}`),
        );
        const fromDc2 = await fed.wanMembers(dcs.addr(DC2_SERVER), dcs.mgmt());
        assert.deepStrictEqual(
            fromDc2.map((m) => `${m.Name} ${m.Status}`).sort(),
            dcs.wanNames().map((n) => `${n} 1`),
        );
        // The CLI on a dc1 server (its login environment), the management token on stdin.
        const cli = await hosts.run(1, "bash -lc 'CONSUL_HTTP_TOKEN_FILE=/dev/stdin consul members -wan'", {
            stdin: dcs.token,
        });
        const alive = cli.split("\n").filter((l) => / alive /.test(l));
        assert.deepStrictEqual(alive.map((l) => l.split(/\s+/)[0]).sort(), dcs.wanNames(), cli);
        figures.add(`2. consul members -wan on a dc1 server: ${alive.length} alive (${dcs.wanNames().join(", ")})`);
    });

    it("3. ?dc=dc2 from dc1's client reads dc2's catalog and KV; ?dc=dc1 from dc2's server and client (CLI, verified HTTPS) reads dc1's KV", async () => {
        // Clients serve HTTPS with their auto_encrypt certificate (Connect CA): trust its roots too.
        const roots = await api(dcs.addr(1), "/v1/connect/ca/roots?pem=true", dcs.mgmt());
        assert.strictEqual(roots.status, 200, roots.body);
        const atClient = dcs.mgmt({ ca: dcs.ca + roots.body });
        let nodes: { Node: string; Datacenter: string }[] = [];
        await waitFor(
            "dc2's two nodes through dc1's client",
            async () => {
                const r = await api(dcs.addr(DC1_CLIENT), "/v1/catalog/nodes?dc=dc2", atClient);
                nodes = r.status === 200 ? (JSON.parse(r.body) as typeof nodes) : [];
                return nodes.length === 2;
            },
            60_000,
            1000,
        );
        assert.deepStrictEqual(
            nodes.map((n) => `${n.Node} ${n.Datacenter}`).sort(),
            [DC2_SERVER, DC2_CLIENT].map((i) => `${dcs.nodeName(i)} dc2`).sort(),
        );
        await dcs.kvPut(DC2_SERVER, "fed/from-dc2", "written in dc2", dcs.mgmt());
        const remote = await dcs.kvGet(DC1_CLIENT, "fed/from-dc2?dc=dc2", atClient);
        assert.strictEqual(`${remote.status} ${remote.body}`, "200 written in dc2");
        // KV is per datacenter: dc1's own has no such key.
        assert.strictEqual((await dcs.kvGet(DC1_CLIENT, "fed/from-dc2", atClient)).status, 404);
        await dcs.kvPut(2, "fed/from-dc1", "written in dc1", dcs.mgmt());
        const back = await dcs.kvGet(DC2_SERVER, "fed/from-dc1?dc=dc1", dcs.mgmt());
        assert.strictEqual(`${back.status} ${back.body}`, "200 written in dc1");
        assert.strictEqual((await dcs.kvGet(DC2_SERVER, "fed/from-dc1", dcs.mgmt())).status, 404);
        // On dc2's client, in its login environment (profile.d): the CLI reads dc1's key, and curl
        // verifies its agent's HTTPS with $CONSUL_CACERT, as on any client (tests/e2e/checks.ts).
        const viaCli = await hosts.run(
            DC2_CLIENT,
            "bash -lc 'CONSUL_HTTP_TOKEN_FILE=/dev/stdin consul kv get -datacenter=dc1 fed/from-dc1'",
            { stdin: dcs.token },
        );
        assert.strictEqual(viaCli.trim(), "written in dc1");
        const curl = await hosts.exec(
            DC2_CLIENT,
            "bash -lc 'curl -sS -f --max-time 5 --cacert $CONSUL_CACERT $CONSUL_HTTP_ADDR/v1/status/leader'",
        );
        assert.strictEqual(curl.code, 0, `curl to dc2's client agent in its login environment: ${curl.stderr}`);
        assert.match(curl.stdout, /:8300"$/);
        // And from here (Node, OpenSSL), verified with dc1's root CA alone.
        const fromClient = await dcs.kvGet(DC2_CLIENT, "fed/from-dc1?dc=dc1", dcs.mgmt());
        assert.strictEqual(`${fromClient.status} ${fromClient.body}`, "200 written in dc1");
        figures.add(
            `3. dc1's client read dc2's ${nodes.length} nodes and a dc2 key; dc2 read a dc1 key (server, client CLI)`,
        );
    });

    it("4. ACL replication: enabled, running, tokens; a token made in dc1 is replicated and works in dc2, a made-up one is not found", async () => {
        const dc2Server = dcs.addr(DC2_SERVER);
        let status: fed.ReplicationStatus | undefined;
        await waitFor(
            "dc2's ACL replication to run",
            async () => {
                status = await fed.replicationStatus(dc2Server, dcs.mgmt());
                return status.Running && status.ReplicatedTokenIndex > 0;
            },
            120_000,
            1000,
        ).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(status)}`));
        assert.ok(status);
        assert.deepStrictEqual(
            [status.Enabled, status.Running, status.ReplicationType, status.SourceDatacenter],
            [true, true, "tokens", "dc1"],
        );
        const before = status.ReplicatedTokenIndex;
        await fed.upsertPolicy(dcs.addr(1), dcs.mgmt(), POLICY, 'key_prefix "fed/" { policy = "write" }');
        dcs.fedToken = await fed.createToken(dcs.addr(1), dcs.mgmt(), POLICY, "federation e2e: made in dc1");
        let after = before;
        await waitFor(
            "ReplicatedTokenIndex to advance",
            async () => (after = (await fed.replicationStatus(dc2Server, dcs.mgmt())).ReplicatedTokenIndex) > before,
            60_000,
            500,
        );
        // The policy replicates too: the write the token allows is waited for.
        await dcs.dc2WriteWith(dcs.fedToken, "fed/by-dc1-token", 60_000);
        const put = (token: string, key: string) =>
            api(dc2Server, `/v1/kv/${key}`, { ca: dcs.ca, token, method: "PUT", body: "x" });
        const outside = await put(dcs.fedToken, "other/x");
        assert.strictEqual(outside.status, 403, outside.body);
        assert.match(outside.body, /Permission denied/);
        const madeUp = await put(randomUUID(), "fed/made-up");
        assert.strictEqual(`${madeUp.status} ${madeUp.body.trim()}`, `403 ${fed.UNKNOWN_TOKEN_IN_SECONDARY}`);
        figures.add(
            `4. dc2's ReplicatedTokenIndex ${before} → ${after} after a token made in dc1; it writes KV in dc2`,
        );
    });

    it("5. the federation output is a secret; dc1's root CA key is nowhere in dc2's state; no secret in any CLI output or event log", async () => {
        const plain1 = await dc1.must(["stack", "output", "--stack", "dc1", "--json"]);
        const plain2 = await dc2.must(["stack", "output", "--stack", "dc2", "--json"]);
        dcs.record.text("dc1's stack output", plain1);
        dcs.record.text("dc2's stack output", plain2);
        assert.strictEqual((JSON.parse(plain1) as Record<string, unknown>).federation, "[secret]");
        dcs.rootKey = fed.privateKeyIn(await dc1.exportState(true), "consul-pki-ca-key");
        const dc2State = await dc2.exportState(true);
        for (const line of fed.keyLines(dcs.rootKey))
            assert.ok(!dc2State.includes(line), "dc1's root CA private key is in dc2's decrypted state");
        // The search does see secrets: dc2's own intermediate key is in its decrypted state.
        const intermediate = fed.keyLines(dcs.federation.intermediates.dc2.keyPem)[0];
        assert.ok(dc2State.includes(intermediate), "dc2's decrypted state lacks its intermediate CA key");
        dcs.record.assertNone(dcs.secrets());
        figures.add(
            `5. ${dcs.record.texts.length} CLI outputs and event logs: none of ${dcs.secrets().length} secrets; ` +
                `dc1's root CA key not in dc2's decrypted state (its intermediate key is)`,
        );
    });

    it("6. WAN RPC verifies TLS: dc2's server with a certificate from another CA, then one for dc3 from dc2's intermediate, is refused with the x509 error", async () => {
        await wanTls(dcs);
    });

    it("7. the WAN cut at dc2's server: both serve local KV (dc2 on a replicated token), ?dc=dc2 fails, replication errs; restored, the pool heals and replication catches up", async () => {
        await wanCut(dcs);
    });

    it("8. pulumi up of both stacks again, nothing changed: every step same, no SSH session", async () => {
        for (const stack of [dc1, dc2]) {
            const before = await dcs.sshLogins();
            const update = dcs.succeeded(await stack.update("up"), `${stack.stack} no-change pulumi up`);
            // Each reading is one login itself.
            const sessions = (await dcs.sshLogins()).map((n, k) => n - before[k] - 1);
            assert.deepStrictEqual(dcs.changed(update), [], `${stack.stack}: ${dcs.changed(update).join(", ")}`);
            assert.deepStrictEqual(sessions, [0, 0, 0, 0, 0, 0], `${stack.stack}: SSH sessions per host`);
            figures.add(
                `8. ${stack.stack} no-change pulumi up: ${seconds(update.ms)} s, ${update.steps.length} steps same`,
            );
        }
    });

    it("9. pulumi destroy of dc2: its server has left dc1's WAN pool (left, not failed); dc1's leader and KV unchanged; then dc1 destroyed", async () => {
        const leader = await leaderOf(dcs.addr(1), dcs.ca);
        assert.match(leader, /:8300$/);
        const down2 = dcs.succeeded(await dc2.update("destroy"), "dc2 pulumi destroy");
        let status = 0;
        await waitFor(
            "dc2's server to leave dc1's WAN pool",
            async () => (status = await dcs.wanStatus(DC2_SERVER, "dc2")) !== 1,
            60_000,
            1000,
        ).catch(() => undefined);
        assert.strictEqual(status, 3, `dc2's server has WAN status ${status} (3 left, 4 failed)`);
        assert.strictEqual(await leaderOf(dcs.addr(1), dcs.ca), leader, "dc1's leader changed");
        assert.strictEqual((await dcs.kvGet(3, "fed/from-dc1", dcs.mgmt())).body, "written in dc1");
        assert.strictEqual((await dcs.kvGet(2, "fed/during-cut-dc1", dcs.mgmt())).body, "dc1 alone");
        figures.add(`9. dc2 pulumi destroy: ${seconds(down2.ms)} s; its server left (status 3); dc1's leader kept`);
        const down1 = dcs.succeeded(await dc1.update("destroy"), "dc1 pulumi destroy");
        figures.add(`9. dc1 pulumi destroy: ${seconds(down1.ms)} s`);
        for (const stack of [dc1, dc2]) {
            const state = JSON.parse(await stack.exportState(false)) as { deployment: { resources?: unknown[] } };
            assert.deepStrictEqual(state.deployment.resources ?? [], [], `${stack.stack}'s state is not empty`);
        }
        // Every update's output and event log, the no-change re-runs and the destroys included.
        dcs.record.assertNone(dcs.secrets());
    });
});
