import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { Settings } from "../../components/config";
import { NodeFile, renderBundle, sha256Hex } from "../../components/vm/bundle";
import { PATHS } from "../../components/vm/paths";
import { nodeFiles } from "../../components/vm";
import { applyScript, ApplyScriptParams, pruneScript, removeScript } from "../../components/vm/scripts";
import { FakeHost, Run } from "./fake-host";
import { sampleMaterial, sampleVmSettings } from "./fixtures";
import { applyBase, removeBase } from "./script-cases";

// The real rendered scripts, run on a fake host (tests/vm/fake-host.ts): what they do to files,
// which commands they run in which order, and what they print. Consul, systemd and SSH are stubs
// here; the real-host suites (npm run test:e2e) remain the word on those.
describe("node scripts on a fake host", function () {
    this.timeout(60_000);
    const settings = sampleVmSettings();
    const vm = settings.vm as NonNullable<Settings["vm"]>;
    const material = sampleMaterial();
    const managementToken = String(material.managementToken);
    const secrets = [material.gossipKey, managementToken, String(material.agentToken), "SECRETSERVERKEY"];
    let host: FakeHost;
    beforeEach(() => {
        host = new FakeHost();
    });
    afterEach(() => host.remove());

    /** The files the program gives a host, at their places on the fake host. */
    const filesFor = (role: "server" | "client", edit: (f: NodeFile) => NodeFile = (f) => f) =>
        nodeFiles(settings, role, role === "server" ? vm.servers[0] : vm.clients[0], vm.servers, material).map((f) =>
            edit({ ...f, path: host.file(f.path) }),
        );
    const clientApply = (bundle: string, extra: Partial<ApplyScriptParams> = {}) =>
        applyScript(
            {
                ...applyBase,
                nodeName: "c1",
                role: "client",
                installMode: "preinstalled",
                serverApiUrls: ["https://10.0.0.11:8501"],
                waitSeconds: 5,
                bundleSha256: sha256Hex(bundle),
                ...extra,
            },
            host.host,
        );
    /** Stub calls of the tools that change the host or talk to the agent, fake root and random names removed. */
    const tools = (run: Run) =>
        run.calls
            .filter((c) =>
                /^(systemctl|consul|consul\.new|consul-env|curl|getent|groupadd|useradd|userdel|groupdel) /.test(c),
            )
            .map((c) =>
                c
                    .split(host.root)
                    .join("")
                    .replace(/\.consul-stage\.\w+/g, ".consul-stage.XXXXXX"),
            );
    const ok = (run: Run) => assert.strictEqual(run.status, 0, run.stderr);
    const noSecrets = (run: Run) => {
        const seen = run.stdout + run.stderr + run.calls.join("\n");
        for (const s of secrets) {
            assert.ok(!seen.includes(s) && !seen.includes(Buffer.from(s).toString("base64")), "a secret was printed");
        }
    };
    const write = (file: string, content: string, mode = 0o644) => {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content, { mode });
    };

    describe("apply", () => {
        const ROOTS = "-----BEGIN CERTIFICATE-----\nROOTS\n-----END CERTIFICATE-----\n";
        /** A client host after a first apply, its agent running. */
        const installClient = (): string => {
            const bundle = renderBundle(filesFor("client"));
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/connect/ca/roots", ROOTS);
            ok(host.run(clientApply(bundle), bundle));
            return bundle;
        };

        it("refuses a stdin bundle whose digest differs, before it touches anything", () => {
            const bundle = renderBundle(filesFor("server"));
            const before = host.tree();
            // A first deploy of a downloading server, its stdin cut short on the way.
            const run = host.run(
                applyScript({ ...applyBase, bundleSha256: sha256Hex(bundle) }, host.host),
                bundle.slice(0, -10),
            );
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "consul-server-1 preflight: FAILED: the file bundle on stdin does not match its digest; re-run pulumi up\n",
            );
            assert.strictEqual(run.stdout, "");
            assert.deepStrictEqual(run.calls, ["id -u"]);
            assert.deepStrictEqual(host.tree(), before, "nothing created, and its work directory removed");
            noSecrets(run);
        });

        it("a first install: stages, validates, swaps in with modes, starts the unit and waits for a leader", () => {
            const files = filesFor("client");
            const bundle = renderBundle(files);
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/connect/ca/roots", ROOTS);
            const run = host.run(clientApply(bundle), bundle);
            ok(run);
            const consul = path.join(host.host.toolPath, "consul");
            assert.deepStrictEqual(run.stdout.split("\n"), [
                "c1 preflight: ok",
                `c1 install: using preinstalled ${consul}`,
                "c1 layout: ok",
                `c1 stage: ${files.length} files staged`,
                "c1 validate: consul validate ok",
                `c1 compare: ${files.length + 1} changed, action: restart`,
                `c1 swap: new files in place (previous ones in ${host.paths.backupDir})`,
                "c1 wait: agent running, leader 10.0.0.11:8300",
                "",
            ]);
            assert.strictEqual(run.stderr, "");
            for (const f of files) {
                assert.strictEqual(fs.readFileSync(f.path, "utf8"), f.content, f.path);
                assert.strictEqual((fs.statSync(f.path).mode & 0o7777).toString(8).padStart(4, "0"), f.mode, f.path);
                assert.ok(run.calls.some((c) => c.startsWith(`chown ${f.owner}:${f.group} `) && c.endsWith(f.path)));
            }
            // The preinstalled binary is linked at PATHS.binary; the client trusts the Connect CA too.
            assert.strictEqual(fs.readlinkSync(host.paths.binary), consul);
            assert.strictEqual(fs.readFileSync(host.paths.agentCaBundle, "utf8"), material.caCertPem + ROOTS);
            assert.ok(fs.existsSync(host.paths.userMarker), "it created the consul user, and says so for removal");
            const stage = "/etc/.consul-stage.XXXXXX";
            assert.deepStrictEqual(tools(run), [
                "getent group consul",
                "groupadd --system consul",
                `useradd --system --gid consul --home-dir ${PATHS.dataDir} --no-create-home --shell /bin/false consul`,
                "consul version",
                `consul.new validate ${stage}${PATHS.mainConfig} ${stage}${PATHS.joinConfig} ${stage}${PATHS.secretConfig} ${stage}${PATHS.gossipConfig}`,
                "systemctl is-active --quiet consul.service",
                "systemctl daemon-reload",
                "systemctl enable --quiet consul.service",
                "systemctl show -p InvocationID --value consul.service",
                "systemctl show -p NRestarts --value consul.service",
                "systemctl restart --no-block consul.service",
                "curl GET https://10.0.0.11:8501/v1/connect/ca/roots?pem=true",
                "systemctl show -p NRestarts --value consul.service",
                "systemctl is-failed --quiet consul.service",
                "systemctl show -p InvocationID --value consul.service",
                "curl GET https://127.0.0.1:8501/v1/status/leader",
            ]);
            // No staging, work or backup directory is left.
            assert.deepStrictEqual(
                host.tree().filter((p) => /\.consul-|^\/tmp\/./.test(p)),
                [],
            );
            noSecrets(run);
        });

        it("a re-run with the files in place changes nothing and still waits for the agent", () => {
            const bundle = installClient();
            const before = host.tree();
            const run = host.run(clientApply(bundle), bundle);
            ok(run);
            assert.deepStrictEqual(run.stdout.split("\n").slice(1, 2), ["c1 install: consul 1.16.2 already installed"]);
            assert.deepStrictEqual(run.stdout.split("\n").slice(-5), [
                "c1 validate: consul validate ok",
                "c1 compare: nothing changed, agent left running",
                "c1 none: no agent action needed",
                "c1 wait: agent running, leader 10.0.0.11:8300",
                "",
            ]);
            const calls = tools(run);
            assert.ok(!calls.some((c) => / (restart|reload|stop)\b/.test(c)), calls.join("\n"));
            assert.strictEqual(calls[calls.length - 1], "curl GET https://127.0.0.1:8501/v1/status/leader");
            assert.deepStrictEqual(host.tree(), before);
        });

        it("refuses a bundle entry outside the files it manages, before any live file is written", () => {
            const files = filesFor("client");
            const outside = [
                renderBundle([...files, { ...files[0], path: host.file("/etc/cron.d/consul") }]),
                renderBundle(files) + `${host.paths.configDir}/../cron.d/consul 0644 root root ZWNobyBoaQo=\n`,
            ];
            for (const bundle of outside) {
                const run = host.run(clientApply(bundle), bundle);
                assert.strictEqual(run.status, 1);
                assert.match(
                    run.stderr,
                    /^c1 stage: FAILED: refusing to write \S+\/cron\.d\/consul(: not a file this program manages)?\n$/,
                );
                assert.ok(!fs.existsSync(host.file("/etc/cron.d")));
                for (const f of files) assert.ok(!fs.existsSync(f.path), f.path);
                assert.ok(!tools(run).some((c) => c.startsWith("systemctl ")));
                assert.deepStrictEqual(
                    host.tree().filter((p) => /\.consul-|^\/tmp\/./.test(p)),
                    [],
                );
            }
        });

        it("a config that consul validate rejects changes nothing on the host", () => {
            installClient();
            const before = host.tree();
            const live = fs.readFileSync(host.paths.mainConfig, "utf8");
            host.set("validate-fails", "Config validation failed: bad thing\n");
            const files = filesFor("client", (f) =>
                f.path === host.paths.mainConfig ? { ...f, content: '{"changed":true}\n' } : f,
            );
            const bundle = renderBundle(files);
            const run = host.run(clientApply(bundle), bundle);
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "c1 validate: FAILED: consul validate rejected the new config, nothing was changed: Config validation failed: bad thing\n",
            );
            assert.strictEqual(fs.readFileSync(host.paths.mainConfig, "utf8"), live);
            assert.ok(!tools(run).some((c) => / (restart|reload|daemon-reload|enable)\b/.test(c)));
            assert.deepStrictEqual(host.tree(), before);
        });

        it("an agent that fails with its new config is rolled back to the previous files and started again", () => {
            installClient();
            const live = fs.readFileSync(host.paths.mainConfig, "utf8");
            // The fake systemd reports the unit failed while the live config says "broken".
            const files = filesFor("client", (f) =>
                f.path === host.paths.mainConfig ? { ...f, content: '{"broken":true}\n' } : f,
            );
            const bundle = renderBundle(files);
            const run = host.run(clientApply(bundle, { waitSeconds: 0 }), bundle);
            assert.strictEqual(run.status, 1);
            assert.ok(run.stdout.includes("c1 compare: 1 changed, action: restart\n"), run.stdout);
            assert.match(
                run.stderr,
                /^c1 wait: FAILED: gave up after \d+s waiting for the agent \(systemd reports consul.service failed\); rolled back to the previous binary and files, and the old agent is running and healthy again; see journalctl -u consul on c1\n$/,
            );
            assert.strictEqual(fs.readFileSync(host.paths.mainConfig, "utf8"), live);
            assert.strictEqual(tools(run).filter((c) => c.startsWith("systemctl restart ")).length, 2);
        });
    });

    describe("remove", () => {
        /** A host as the apply script leaves it, owned by `owner`, plus files that are not ours. */
        const installed = (owner: string, opts: { preinstalled?: boolean; createdUser?: boolean } = {}) => {
            write(host.file("/etc/profile.d/other.sh"), "# not ours\n");
            write(host.file("/usr/local/bin/other-tool"), "not ours\n", 0o755);
            write(host.file("/var/lib/other/state"), "not ours\n");
            const untouched = host.tree();
            const p = host.paths;
            write(p.mainConfig, "{}\n", 0o640);
            write(p.caFile, material.caCertPem);
            write(p.managementTokenFile, managementToken, 0o600);
            write(p.owner, `${owner}\n`);
            write(p.unit, "[Unit]\n");
            write(p.profile, "export CONSUL_HTTP_ADDR=x\n");
            write(path.join(p.dataDir, "raft", "raft.db"), "data", 0o600);
            write(p.backupDir + p.mainConfig, "{}\n");
            if (opts.createdUser) write(p.userMarker, "");
            if (opts.preinstalled) {
                fs.symlinkSync(path.join(host.host.toolPath, "consul"), p.binary);
            } else {
                write(p.binary, `#!/bin/sh\nexec '${path.join(host.host.toolPath, "consul")}' "$@"\n`, 0o755);
                write(`${p.binary}.previous`, "old binary\n", 0o755);
            }
            host.set("user");
            host.set("group");
            host.set("active");
            return untouched;
        };

        it("leaves the host alone when managed-by names another owner (the host moved to another resource)", () => {
            installed("client-s1", { createdUser: true });
            const before = host.tree();
            const run = host.run(removeScript(removeBase, host.host));
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 leave: the agent here is now managed as client-s1, not server-s1: left as is\n",
            );
            assert.deepStrictEqual(run.calls, ["id -u"]);
            assert.deepStrictEqual(host.tree(), before);
            assert.ok(host.has("active") && host.has("user"));
        });

        it("a client of its own: stopped (leave_on_terminate), then its files, downloaded binary and created user go, and nothing else", () => {
            const untouched = installed("client-c1", { createdUser: true });
            const run = host.run(
                removeScript({ ...removeBase, nodeName: "c1", ownerId: "client-c1", role: "client" }, host.host),
            );
            ok(run);
            assert.strictEqual(
                run.stdout,
                "c1 leave: agent stopped\nc1 remove: unit, config, keys, data, binary, consul user removed\n",
            );
            assert.deepStrictEqual(tools(run), [
                "systemctl is-active --quiet consul.service",
                "systemctl stop consul.service",
                "systemctl disable --quiet consul.service",
                "systemctl daemon-reload",
                "userdel consul",
                "getent group consul",
                "groupdel consul",
            ]);
            assert.deepStrictEqual(host.tree(), untouched);
        });

        it("a preinstalled binary (and the link to it) stays, and so does a consul user it did not create", () => {
            const untouched = installed("client-c1", { preinstalled: true });
            const run = host.run(
                removeScript(
                    {
                        ...removeBase,
                        nodeName: "c1",
                        ownerId: "client-c1",
                        role: "client",
                        installMode: "preinstalled",
                    },
                    host.host,
                ),
            );
            ok(run);
            assert.strictEqual(run.stdout, "c1 leave: agent stopped\nc1 remove: unit, config, keys, data removed\n");
            assert.ok(!tools(run).some((c) => /^(userdel|groupdel) /.test(c)));
            assert.deepStrictEqual(host.tree(), [...untouched, PATHS.binary].sort());
            assert.strictEqual(fs.readlinkSync(host.paths.binary), path.join(host.host.toolPath, "consul"));
        });

        it("a server leaves once autopilot reports the cluster healthy, with the local CA and token file, then stops", () => {
            const untouched = installed("server-s1");
            host.respond("/v1/operator/autopilot/health", '{"Healthy":true,"FailureTolerance":1}');
            const run = host.run(removeScript(removeBase, host.host));
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 leave: left the cluster\ns1 leave: agent stopped\ns1 remove: unit, config, keys, data, binary removed\n",
            );
            assert.deepStrictEqual(tools(run), [
                "systemctl is-active --quiet consul.service",
                "curl GET https://127.0.0.1:8501/v1/operator/autopilot/health",
                "consul leave",
                `consul-env https://127.0.0.1:8501 ${PATHS.caFile} ${PATHS.managementTokenFile}`,
                "systemctl stop consul.service",
                "systemctl disable --quiet consul.service",
                "systemctl daemon-reload",
            ]);
            assert.deepStrictEqual(host.tree(), untouched);
            noSecrets(run);
        });

        it("a server does not leave a cluster that autopilot does not report healthy: nothing is removed", () => {
            installed("server-s1", { createdUser: true });
            const before = host.tree();
            const run = host.run(removeScript({ ...removeBase, waitSeconds: 0 }, host.host));
            assert.strictEqual(run.status, 1);
            assert.strictEqual(
                run.stderr,
                "s1 leave: FAILED: autopilot has not reported the cluster healthy for 0s, so leaving could cost quorum; bring the failed server back, or list a dead one in deadHosts, then re-run pulumi up\n",
            );
            assert.deepStrictEqual(tools(run), [
                "systemctl is-active --quiet consul.service",
                "curl GET https://127.0.0.1:8501/v1/operator/autopilot/health",
            ]);
            assert.deepStrictEqual(host.tree(), before);
        });
    });

    describe("prune", () => {
        it("force-leaves a dead member, removes a dead server from the Raft peers, skips a name that is neither, waits for health", () => {
            write(host.paths.binary, `#!/bin/sh\nexec '${path.join(host.host.toolPath, "consul")}' "$@"\n`, 0o755);
            write(host.paths.caFile, material.caCertPem);
            write(host.paths.managementTokenFile, managementToken, 0o600);
            host.set(
                "members",
                "Node  Address          Status  Type    Build   Protocol  DC   Partition  Segment\n" +
                    "s1    10.0.0.11:8301  alive   server  1.16.2  2         dc1  default    <all>\n" +
                    "s4    10.0.0.14:8301  failed  server  1.16.2  2         dc1  default    <all>\n",
            );
            host.respond(
                "/v1/operator/raft/configuration",
                JSON.stringify({
                    Servers: [
                        { ID: "id-1", Node: "s1", Address: "10.0.0.11:8300", Leader: true, Voter: true },
                        { ID: "id-4", Node: "s4", Address: "10.0.0.14:8300", Leader: false, Voter: true },
                    ],
                    Index: 7,
                }),
            );
            host.respond("/v1/status/leader", '"10.0.0.11:8300"');
            host.respond("/v1/operator/autopilot/health", '{"Healthy":true,"FailureTolerance":0}');
            const run = host.run(
                pruneScript({ nodeName: "s1", httpsPort: 8501, deadNodes: ["s5", "s4"], waitSeconds: 5 }, host.host),
            );
            ok(run);
            assert.strictEqual(
                run.stdout,
                "s1 prune: s4 force-left and pruned from the member list\n" +
                    "s1 prune: s4 removed from the Raft peers\n" +
                    "s1 wait: dead hosts pruned (s4 s5); leader 10.0.0.11:8300, autopilot healthy\n",
            );
            const env = `consul-env https://127.0.0.1:8501 ${PATHS.caFile} ${PATHS.managementTokenFile}`;
            assert.deepStrictEqual(tools(run), [
                "consul members",
                "consul force-leave -prune s4",
                env,
                "curl GET https://127.0.0.1:8501/v1/operator/raft/configuration",
                "consul operator raft remove-peer -id=id-4",
                env,
                "consul members",
                "curl GET https://127.0.0.1:8501/v1/operator/raft/configuration",
                "curl GET https://127.0.0.1:8501/v1/status/leader",
                "curl GET https://127.0.0.1:8501/v1/operator/autopilot/health",
                "curl GET https://127.0.0.1:8501/v1/status/leader",
            ]);
            noSecrets(run);
        });
    });
});
