// Leadership as the servers report it, every 100 ms, from the node (leader-poll.sh over one ssh
// session): when the cluster first had a leader, its longest leaderless gap after that, and the
// fewest servers that answered in a round.

import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { CA_CONFIGMAP_NAME } from "../../components/agent";
import { FILES } from "../../components/kubernetes/manifests/common";
import { KubeNode } from "./node";
import { sleep } from "./workloads";

const NODE_DIR = "/var/tmp/leader-poll";

export interface LeaderSeries {
    /** Unix ms of the first round in which a server named a leader (undefined: never). */
    readonly firstLeaderAt?: number;
    /** The longest run of rounds without a leader after the first one, in ms. */
    readonly longestGapMs: number;
    /** The fewest servers that answered in a round after the first leader. */
    readonly fewestAnswering: number;
    readonly rounds: number;
}

export class LeaderPoll {
    private readonly output: Promise<string>;
    private caWatch = true;
    private constructor(
        private readonly node: KubeNode,
        private readonly stopFile: string,
        child: ReturnType<typeof spawn>,
    ) {
        this.output = new Promise((resolve) => {
            let out = "";
            child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
            child.on("close", () => resolve(out));
        });
    }

    /**
     * Starts polling `servers` pods of the StatefulSet behind `service` in `namespace`. Until the
     * stack's CA ConfigMap exists (a first `pulumi up`), rounds count no server: the poller checks
     * every answer against that CA, which it is given as soon as the ConfigMap appears.
     */
    static start(
        node: KubeNode,
        namespace: string,
        service: string,
        servers: number,
        httpsPort: number,
        tlsName: string,
    ): LeaderPoll {
        const root = node.hosts.root(node.index);
        fs.mkdirSync(path.join(root, NODE_DIR), { recursive: true });
        const stopFile = `${NODE_DIR}/stop-${Date.now()}`;
        const caFile = `${NODE_DIR}/ca.crt`;
        const script = fs.readFileSync(path.join(__dirname, "leader-poll.sh"), "utf8");
        const args = [
            caFile,
            node.address,
            namespace,
            service,
            String(servers),
            String(httpsPort),
            tlsName,
            "0.1",
            stopFile,
        ];
        const child = spawn("ssh", [...node.hosts.sshOptions(node.index), "bash", "-s", "--", ...args], {
            stdio: ["pipe", "pipe", "inherit"],
        });
        child.stdin.end(script);
        const poll = new LeaderPoll(node, path.join(root, stopFile), child);
        void poll.copyCa(namespace, path.join(root, caFile));
        return poll;
    }

    private async copyCa(namespace: string, target: string): Promise<void> {
        while (this.caWatch) {
            try {
                const map = JSON.parse(
                    this.node.kubectl(
                        ["get", "configmap", "-n", namespace, CA_CONFIGMAP_NAME, "-o", "json"],
                        undefined,
                        10_000,
                    ),
                ) as {
                    data?: Record<string, string>;
                };
                const pem = map.data?.[FILES.caCert];
                if (pem) {
                    fs.writeFileSync(target, pem);
                    return;
                }
            } catch {
                // Not there yet.
            }
            await sleep(500);
        }
    }

    async stop(): Promise<LeaderSeries> {
        this.caWatch = false;
        fs.writeFileSync(this.stopFile, "");
        const rows = (await this.output)
            .trim()
            .split("\n")
            .filter((l) => /^\d+ \d+ \d+$/.test(l))
            .map((l) => l.split(" ").map(Number));
        const first = rows.findIndex(([, , leaders]) => leaders > 0);
        let longestGapMs = 0;
        let fewestAnswering = Number.POSITIVE_INFINITY;
        let gapStart: number | undefined;
        for (const [at, answered, leaders] of first < 0 ? [] : rows.slice(first)) {
            fewestAnswering = Math.min(fewestAnswering, answered);
            if (leaders === 0) gapStart ??= at;
            else if (gapStart !== undefined) {
                longestGapMs = Math.max(longestGapMs, at - gapStart);
                gapStart = undefined;
            }
        }
        if (gapStart !== undefined) longestGapMs = Math.max(longestGapMs, rows[rows.length - 1][0] - gapStart);
        return {
            firstLeaderAt: first < 0 ? undefined : rows[first][0],
            longestGapMs,
            fewestAnswering: Number.isFinite(fewestAnswering) ? fewestAnswering : 0,
            rounds: rows.length,
        };
    }
}
