// An S3-compatible bucket for the snapshot suite: moto's S3 server (scripts/e2e/moto.sh installs it
// into a cached venv) on the bridge address, where the test hosts' rclone reaches it; the test
// itself reads the bucket with boto3 from the same venv.

import { ChildProcess, spawn, spawnSync } from "child_process";
import * as path from "path";
import { runScript } from "./hosts";
import { sleep } from "./infra";

/** Credentials moto accepts (any); the secret is what the stack sets with --secret. */
export const S3_CREDENTIALS = { accessKeyId: "AKIAE2ESNAPSHOTS0001", secretAccessKey: "e2e-Secret-9f3b1c7d5a" };

export interface S3Object {
    readonly key: string;
    readonly size: number;
}

export class S3Server {
    private constructor(
        readonly url: string,
        private readonly venv: string,
        private readonly child: ChildProcess,
    ) {}

    static async start(bindAddr: string, port = 9000): Promise<S3Server> {
        const venv = await runScript("moto.sh", [], 15 * 60_000);
        const child = spawn(path.join(venv, "bin", "moto_server"), ["-H", bindAddr, "-p", String(port)], {
            stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
        const url = `http://${bindAddr}:${port}`;
        const server = new S3Server(url, venv, child);
        for (let i = 0; i < 100; i++) {
            if (spawnSync("curl", ["-fsS", "-o", "/dev/null", `${url}/`], { timeout: 2000 }).status === 0)
                return server;
            if (child.exitCode !== null) break;
            await sleep(200);
        }
        server.stop();
        throw new Error(`moto's S3 server did not come up at ${url}: ${stderr}`);
    }

    /** Runs a boto3 snippet (sys.argv[1:] = args) against this server; returns its stdout. */
    private boto(code: string, args: string[]): string {
        const prelude = [
            "import json, sys, boto3",
            `s3 = boto3.client("s3", endpoint_url=${JSON.stringify(this.url)}, region_name="us-east-1")`,
        ].join("\n");
        const r = spawnSync(path.join(this.venv, "bin", "python"), ["-c", `${prelude}\n${code}`, ...args], {
            encoding: "utf8",
            timeout: 60_000,
            env: {
                AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
                AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
            },
        });
        if (r.status !== 0) throw new Error(`boto3 ${args.join(" ")}: ${r.stderr}${r.error?.message ?? ""}`);
        return r.stdout;
    }

    createBucket(bucket: string): void {
        this.boto("s3.create_bucket(Bucket=sys.argv[1])", [bucket]);
    }

    /** The objects under `prefix`, by key. */
    list(bucket: string, prefix: string): S3Object[] {
        const out = this.boto(
            [
                "r = s3.list_objects_v2(Bucket=sys.argv[1], Prefix=sys.argv[2])",
                'print(json.dumps([{"key": o["Key"], "size": o["Size"]} for o in r.get("Contents", [])]))',
            ].join("\n"),
            [bucket, prefix],
        );
        return (JSON.parse(out) as S3Object[]).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    }

    download(bucket: string, key: string, file: string): void {
        this.boto("s3.download_file(sys.argv[1], sys.argv[2], sys.argv[3])", [bucket, key, file]);
    }

    stop(): void {
        if (this.child.exitCode === null) this.child.kill("SIGTERM");
    }
}
