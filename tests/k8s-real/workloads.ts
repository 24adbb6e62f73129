// What the k8s-real scenarios ask the cluster about its pods and the Consul agents in them.

import * as assert from "assert";
import { KubeNode } from "./node";

export interface Pod {
    metadata: { name: string; namespace: string; uid: string };
    spec: { containers: { image: string }[] };
    status: { phase: string; conditions?: { type: string; status: string }[] };
}

export const sleep = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms));

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export function podsIn(node: KubeNode, ns: string): Pod[] {
    return (JSON.parse(node.kubectl(["get", "pods", "-n", ns, "-o", "json"])) as { items: Pod[] }).items;
}

/** The StatefulSet's pods (`<name>-<ordinal>`), not the Jobs' that share the prefix (consul-server-count-…). */
export function statefulSetPods(node: KubeNode, ns: string, statefulSet: string): Pod[] {
    const ordinal = new RegExp(`^${statefulSet}-\\d+$`);
    return podsIn(node, ns).filter((p) => ordinal.test(p.metadata.name));
}

export function isReady(p: Pod): boolean {
    return p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Polls `ok` every second; fails naming `what` after the timeout. */
export async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 300_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
        if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
        await sleep(1000);
    }
}

/**
 * A shell command in an agent pod's consul container (a server's or a client's), the management
 * token on its stdin (never in an argument), `stdin` after it.
 */
export function consulIn(node: KubeNode, ns: string, pod: string, token: string, command: string, stdin = ""): string {
    return node.kubectl(
        [
            ...["exec", "-i", "-n", ns, pod, "-c", "consul", "--", "/bin/sh", "-ec"],
            `read -r CONSUL_HTTP_TOKEN; export CONSUL_HTTP_TOKEN; ${command}`,
        ],
        `${token}\n${stdin}`,
    );
}

/** One column of a Consul CLI table (`consul members`, `consul catalog nodes -detailed`), by header. */
export function column(table: string, name: string): string[] {
    const [header, ...rows] = table
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/));
    const at = header.indexOf(name);
    assert.ok(at >= 0, `no ${name} column in:\n${table}`);
    return rows.map((r) => r[at]);
}
