// The server-count Job: where the program puts it, and its script (scripts/server-count.sh) run by
// /bin/sh with real jq against a curl that answers as Consul's HTTP API does (its documented
// /v1/operator/autopilot/configuration and /health bodies). On the real cluster: test:k8s-real's
// scenario 6.

import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SERVER_NAME } from "../../components/agent/names";
import { FILES, MOUNTS } from "../../components/kubernetes/manifests";
import { readShellFile } from "../../components/vm";
import { scriptHeader } from "../../components/shell";
import { evaluateProgram, REPO_ROOT, stackFileConfig, withOperatorHome } from "../mocks";
import { withPinnedKeys } from "../vm/fixtures";
import { Json } from "./helpers";

const dev = () => stackFileConfig("dev").config;
const JOB = "kubernetes:batch/v1:Job";

/** A curl stand-in: answers from $STUB/<path key>.<n> (the n-th call, else the last), logs each call. */
const FAKE_CURL = `#!/bin/sh
# Arguments as the script passes them; the URL is the last one.
for a in "$@"; do url=$a; done
key=$(printf '%s' "\${url#https://*/}" | sed 's/?.*//; s#[/]#_#g')
n=$(($(cat "$STUB/$key.count" 2>/dev/null || echo 0) + 1))
echo "$n" >"$STUB/$key.count"
body=""
case " $* " in *" -X PUT "*) body=$(cat) ;; esac
header=no-token
case " $* " in *" -H @"*) header=token ;; esac
printf '%s %s %s %s\\n' "$key" "$header" "$url" "$body" >>"$STUB/calls"
file="$STUB/$key.$n"
[ -f "$file" ] || file=$(ls "$STUB/$key".[0-9]* | sort -t. -k2 -n | tail -n 1)
cat "$file"
`;

interface Stub {
    readonly leader?: string;
    readonly configuration: object;
    readonly put?: string;
    readonly health: object[];
}

function runScript(
    count: number,
    stub: Stub,
    waitSeconds = 4,
    headerFile = "/consul/acl/management-token.header",
): { status: number; out: string; calls: string[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "server-count-"));
    try {
        fs.mkdirSync(path.join(dir, "bin"));
        fs.writeFileSync(path.join(dir, "bin", "curl"), FAKE_CURL, { mode: 0o755 });
        const files: Record<string, string> = {
            "v1_status_leader.1": stub.leader ?? '"10.0.0.1:8300"',
            "v1_operator_autopilot_configuration.1": JSON.stringify(stub.configuration),
            "v1_operator_autopilot_configuration.2": stub.put ?? "true",
        };
        stub.health.forEach((h, k) => (files[`v1_operator_autopilot_health.${k + 1}`] = JSON.stringify(h)));
        for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
        const script =
            scriptHeader({
                COUNT: count,
                STATEFULSET: SERVER_NAME,
                CONSUL_ADDRS: "https://consul-server.consul.svc:8501",
                CA_FILE: "/consul/ca/ca.crt",
                HEADER_FILE: headerFile,
                WAIT_SECONDS: waitSeconds,
            }) + readShellFile(path.join(REPO_ROOT, "components/kubernetes/scripts/server-count.sh"));
        const r = spawnSync("/bin/sh", ["-c", script], {
            encoding: "utf8",
            env: { PATH: `${path.join(dir, "bin")}:/usr/bin:/bin`, STUB: dir },
            timeout: 30_000,
        });
        const calls = fs.existsSync(path.join(dir, "calls"))
            ? fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n")
            : [];
        return { status: r.status ?? -1, out: r.stdout + r.stderr, calls };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const server = (k: number, voter = true, healthy = true) => ({
    ID: `id-${k}`,
    Name: `${SERVER_NAME}-${k}`,
    Voter: voter,
    Healthy: healthy,
});
const health = (...servers: object[]) => ({ Healthy: true, FailureTolerance: 1, Servers: servers });
const configuration = (minQuorum: number) => ({
    CleanupDeadServers: true,
    LastContactThreshold: "200ms",
    MaxTrailingLogs: 250,
    MinQuorum: minQuorum,
    ServerStabilizationTime: "10s",
    CreateIndex: 5,
    ModifyIndex: 17,
});

describe("the server-count Job (autopilot MinQuorum and Raft's voters follow consul:serverCount)", function () {
    this.timeout(120_000);

    it("runs after the StatefulSet and the ACL Job, with the management token header alone and the count in its script", async () => {
        const r = await evaluateProgram(dev(), { stack: "dev" });
        const [job] = r.mocks.resources.filter((x) => x.type === JOB && x.name.includes("server-count"));
        assert.ok(job, "no server-count Job");
        const spec = (job.inputs.spec as Json).template.spec;
        assert.deepStrictEqual(spec.volumes[1].secret.items, [
            { key: FILES.managementHeader, path: FILES.managementHeader },
        ]);
        const script: string = spec.containers[0].command[2];
        assert.match(script, /^readonly COUNT='3'$/m);
        assert.match(script, new RegExp(`^readonly HEADER_FILE='${MOUNTS.acl}/${FILES.managementHeader}'$`, "m"));
        assert.ok(
            script.endsWith(readShellFile(path.join(REPO_ROOT, "components/kubernetes/scripts/server-count.sh"))),
        );
        const component = r.mocks.resources.find((x) => x.type === "consul:k8s:ConsulServerCount");
        assert.ok(component);
        const deps = component.dependencies.map((urn) => urn.split("::").pop() ?? "");
        assert.ok(
            deps.includes("consul-servers-statefulset") && deps.includes("consul-acl-agent-token-job"),
            deps.join(", "),
        );
    });

    it("has no Job in the hybrid topology (no StatefulSet)", async () => {
        const operator = withOperatorHome();
        const r = await evaluateProgram(
            withPinnedKeys({
                topology: "hybrid",
                serverHosts: JSON.stringify(["s1=10.20.0.11", "s2=10.20.0.12", "s3=10.20.0.13"]),
                sshPrivateKeyPath: "~/.ssh/consul_ed25519",
            }),
            { stack: "prod" },
        ).finally(operator.restore);
        assert.deepStrictEqual(
            r.mocks.resources.filter((x) => x.type === JOB && x.name.includes("server-count")),
            [],
        );
    });

    it("3 → 5: sets MinQuorum 5 with the index it read (cas), then waits for five healthy voters", () => {
        const run = runScript(5, {
            configuration: configuration(3),
            health: [
                health(server(0), server(1), server(2), server(3, false), server(4, false)),
                health(server(0), server(1), server(2), server(3), server(4)),
            ],
        });
        assert.strictEqual(run.status, 0, run.out);
        const put = run.calls.find((c) => c.includes("cas="));
        assert.ok(put, run.calls.join("\n"));
        assert.match(put, /configuration\?cas=17 /);
        // What was read, written back with only MinQuorum changed.
        assert.deepStrictEqual(JSON.parse(put.slice(put.indexOf("{"))), { ...configuration(3), MinQuorum: 5 });
        assert.ok(
            run.calls.every((c) => c.split(" ")[1] === "token"),
            run.calls.join("\n"),
        );
        assert.match(run.out, /autopilot MinQuorum 3 -> 5/);
        assert.match(run.out, /Raft: consul-server-0:voter:healthy .* consul-server-4:voter:healthy/);
        assert.strictEqual(run.calls.filter((c) => c.startsWith("v1_operator_autopilot_health")).length, 2);
    });

    it("5 → 3: waits while the departing servers are still peers; MinQuorum already 3 is not written", () => {
        const run = runScript(3, {
            configuration: configuration(3),
            health: [
                health(server(0), server(1), server(2), server(3, true, false), server(4, true, false)),
                health(server(0), server(1), server(2)),
            ],
        });
        assert.strictEqual(run.status, 0, run.out);
        assert.ok(!run.calls.some((c) => c.includes("cas=")), run.calls.join("\n"));
        assert.match(run.out, /MinQuorum is 3 already/);
        assert.strictEqual(run.calls.filter((c) => c.startsWith("v1_operator_autopilot_health")).length, 2);
    });

    it("ACLs off: no token header on any call, and no ACL volume in the Job", async () => {
        const run = runScript(
            3,
            { configuration: configuration(3), health: [health(server(0), server(1), server(2))] },
            4,
            "",
        );
        assert.strictEqual(run.status, 0, run.out);
        assert.ok(
            run.calls.length >= 3 && run.calls.every((c) => c.split(" ")[1] === "no-token"),
            run.calls.join("\n"),
        );
        const r = await evaluateProgram({ ...dev(), aclEnabled: "false" }, { stack: "dev" });
        const [job] = r.mocks.resources.filter((x) => x.type === JOB && x.name.includes("server-count"));
        const spec = (job.inputs.spec as Json).template.spec as {
            volumes: { name: string }[];
            containers: { command: string[] }[];
        };
        assert.deepStrictEqual(
            spec.volumes.map((v) => v.name),
            ["ca"],
        );
        assert.match(spec.containers[0].command[2], /^readonly HEADER_FILE=''$/m);
    });

    it("fails at its deadline naming Raft's servers when a departing one is never pruned", () => {
        const run = runScript(3, {
            configuration: configuration(5),
            health: [health(server(0), server(1), server(2), server(3, true, false))],
        });
        assert.notStrictEqual(run.status, 0);
        assert.match(
            run.out,
            /Raft's servers are not consul-server-0\.\.2, all healthy voters \(now: consul-server-0:voter:healthy consul-server-1:voter:healthy consul-server-2:voter:healthy consul-server-3:voter:unhealthy\) after 4s/,
        );
    });

    it("fails when autopilot's configuration changed between its read and its write (cas false)", () => {
        const run = runScript(5, { configuration: configuration(3), put: "false", health: [health()] });
        assert.notStrictEqual(run.status, 0);
        assert.match(run.out, /changed while this Job set it \(cas 17\)/);
    });

    it("fails without a leader at its deadline", () => {
        const run = runScript(3, { leader: '""', configuration: configuration(3), health: [health()] }, 2);
        assert.notStrictEqual(run.status, 0);
        assert.match(run.out, /no Consul leader at https:\/\/consul-server\.consul\.svc:8501 after 2s/);
    });
});
