// A model of what the command provider (@pulumi/command 1.x) runs between two evaluations, from
// the recorded inputs of remote.Command resources. Its rules, read in the provider source
// (provider/pkg/provider/remote/command*.go, common/inputs.go) and the SDK (replaceOnChanges
// "triggers[*]"): no input changed → nothing runs; `triggers` changed → replace: the old
// resource's `delete` and the new one's `create`, two sessions; any other input changed → update
// (the `update` script, else `create`); gone → delete, unless registered with retainOnDelete;
// new → create. Every run is one SSH session. The order of a replace's two runs is not modelled
// here: the agent commands, the only ones with triggers, are registered with deleteBeforeReplace
// (components/vm/node.ts), so the engine runs the old delete first; without that option it would
// create the new one first and delete the old one at the end (./e2e/replay.ts runs both orders).
// (ignoreChanges is applied by the mocks, ./mocks.ts.)

import { RecordedResource } from "./mocks";

export const COMMAND_TYPE = "command:remote:Command";

export type CommandOp = "create" | "update" | "replace" | "delete" | "none";

/** What one Command costs in a deploy: its op and the SSH sessions that takes on its host. */
export interface CommandRun {
    readonly name: string;
    /** The host the command runs on. */
    readonly host: string;
    readonly op: CommandOp;
    /** SSH sessions (remote commands) this op costs. */
    readonly sessions: number;
}

function hostOf(r: RecordedResource): string {
    return String((r.inputs.connection as { host?: unknown } | undefined)?.host);
}

const SESSIONS: Record<CommandOp, number> = { create: 1, update: 1, replace: 2, delete: 1, none: 0 };

/**
 * What the provider does with one Command between two deploys, from its previous inputs (undefined
 * if it is new) and its inputs now. `connection` is not replace-on-change: it counts as any input.
 */
export function diffOp(prev: Record<string, unknown> | undefined, next: Record<string, unknown>): CommandOp {
    if (!prev) return "create";
    if (JSON.stringify(prev.triggers) !== JSON.stringify(next.triggers)) return "replace";
    if (JSON.stringify(prev) !== JSON.stringify(next)) return "update";
    return "none";
}

export function diffCommands(before: readonly RecordedResource[], after: readonly RecordedResource[]): CommandRun[] {
    const commands = (rs: readonly RecordedResource[]) =>
        new Map(rs.filter((r) => r.type === COMMAND_TYPE).map((r) => [r.name, r]));
    const old = commands(before);
    const now = commands(after);
    const runs: CommandRun[] = [];
    for (const [name, r] of now) {
        const prev = old.get(name);
        const op = diffOp(prev?.inputs, r.inputs);
        runs.push({ name, host: hostOf(r), op, sessions: SESSIONS[op] });
    }
    for (const [name, r] of old) {
        // retainOnDelete: the engine drops the resource from the state and runs nothing.
        if (!now.has(name) && !r.retainOnDelete) runs.push({ name, host: hostOf(r), op: "delete", sessions: 1 });
    }
    return runs;
}

/** SSH sessions per host. */
export function sessionsPerHost(runs: readonly CommandRun[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const run of runs) out.set(run.host, (out.get(run.host) ?? 0) + run.sessions);
    return out;
}
