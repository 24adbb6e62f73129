// Outputs per host: every OutputImpl the SDK constructs while the program is evaluated under the
// mocks, and the program line it came from.

import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { evaluateProgram, REPO_ROOT } from "../../tests/mocks";
import { prodStackWithHosts } from "../../tests/vm/fixtures";

interface SiteCount {
    /** The program frame nearest the construction (file:line function), or why there is none. */
    readonly site: string;
    /** The SDK function the program called (the frame just inside the SDK), e.g. OutputImpl.apply. */
    readonly via: string;
    count: number;
}

/**
 * Counts Output constructions: the SDK's OutputImpl constructor starts with
 * `this.__pulumiOutput = true`, so a setter of that name on the prototype sees every new Output
 * (whoever creates it: `apply`, `all`, `output`, `secret`, `interpolate`, resource output
 * properties, ...) and turns itself into an own data property at once.
 */
class OutputCensus {
    total = 0;
    readonly sites = new Map<string, SiteCount>();
    private readonly positions = new Map<string, { file: string; line: number; column: number }>();

    install(): void {
        const proto = (pulumi.Output as unknown as { prototype: object }).prototype;
        // eslint-disable-next-line @typescript-eslint/no-this-alias
        const census = this;
        Object.defineProperty(proto, "__pulumiOutput", {
            configurable: true,
            get: () => undefined,
            set(this: object, value: unknown) {
                Object.defineProperty(this, "__pulumiOutput", {
                    value,
                    writable: true,
                    enumerable: true,
                    configurable: true,
                });
                census.record();
            },
        });
    }

    uninstall(): void {
        delete (pulumi.Output as unknown as { prototype: Record<string, unknown> }).prototype.__pulumiOutput;
    }

    reset(): Map<string, SiteCount> {
        const before = new Map([...this.sites].map(([k, v]) => [k, { ...v }]));
        this.total = 0;
        this.sites.clear();
        return before;
    }

    /** Off: count only (no stack capture, which is dear). */
    attribute = true;

    private record(): void {
        this.total++;
        if (!this.attribute) return;
        // eslint-disable-next-line @typescript-eslint/unbound-method -- restored as it was, never called here
        const previous = { prepare: Error.prepareStackTrace, limit: Error.stackTraceLimit };
        Error.prepareStackTrace = (_e, frames) => frames;
        Error.stackTraceLimit = 80;
        const holder: { stack?: NodeJS.CallSite[] } = {};
        Error.captureStackTrace(holder);
        const frames = holder.stack ?? [];
        Error.prepareStackTrace = previous.prepare;
        Error.stackTraceLimit = previous.limit;
        // frames[0] is record(), frames[1] the setter, frames[2] the constructor.
        const k = frames.findIndex((f, i) => i > 2 && isProgramFrame(f));
        let site = "(no program frame: the SDK's own asynchronous work)";
        let via = "";
        if (k >= 0) {
            const f = frames[k];
            const file = f.getFileName() ?? "";
            const key = `${file}:${f.getLineNumber()}:${f.getColumnNumber()}`;
            site = `${key} ${frameName(f)}`;
            if (!this.positions.has(site)) {
                this.positions.set(site, {
                    file,
                    line: f.getLineNumber() ?? 0,
                    column: (f.getColumnNumber() ?? 1) - 1,
                });
            }
            via = frameName(frames[k - 1]);
        }
        const id = `${site}\u0000${via}`;
        const entry = this.sites.get(id);
        if (entry) entry.count++;
        else this.sites.set(id, { site, via, count: 1 });
    }

    /** file:line in the TypeScript source (ts-node's source maps), relative to the repository. */
    describe(site: string): string {
        const pos = this.positions.get(site);
        if (!pos) return site;
        let { file, line } = pos;
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const sms = require("@cspotcode/source-map-support") as {
                mapSourcePosition(p: { source: string; line: number; column: number }): {
                    source: string;
                    line: number;
                };
            };
            const mapped = sms.mapSourcePosition({ source: file, line, column: pos.column });
            ({ source: file, line } = mapped);
        } catch {
            // unmapped: the compiled line
        }
        const name = site.slice(site.indexOf(" ") + 1);
        return `${path.relative(REPO_ROOT, file.replace(/^file:\/\//, ""))}:${line} ${name}`;
    }
}

function isProgramFrame(f: NodeJS.CallSite): boolean {
    const file = f.getFileName() ?? "";
    const rel = path.relative(REPO_ROOT, file.replace(/^file:\/\//, ""));
    return /^(bin\/)?(components\/|index\.)/.test(rel);
}

function frameName(f: NodeJS.CallSite | undefined): string {
    if (!f) return "?";
    const fn = f.getFunctionName() ?? f.getMethodName() ?? "<anonymous>";
    if (f.isConstructor()) return `new ${fn}`;
    // Outputs are Proxies: a method called on one reports the type Proxy.
    const type = f.getTypeName() === "Proxy" ? "Output" : f.getTypeName();
    return type && type !== "Object" && !fn.startsWith(`${type}.`) ? `${type}.${fn}` : fn;
}

export interface OutputFigures {
    readonly at: Record<number, number>;
    /** Per client host, between 10 and 100 clients (the sites' figures too) and 100 and 1000. */
    readonly perHost: number;
    readonly perHost1000: number;
    readonly topSites: { where: string; via: string; perHost: number }[];
}

/** Outputs constructed evaluating 3 servers + each client count; per-host slopes between them. */
export async function countOutputs(
    secretKeys: string[],
    servers: number,
    clientCounts: readonly number[],
): Promise<OutputFigures> {
    const census = new OutputCensus();
    census.install();
    try {
        const at: Record<number, number> = {};
        const bySite: Record<number, Map<string, SiteCount>> = {};
        for (const n of clientCounts) {
            census.reset();
            census.attribute = n !== 1000;
            await evaluateProgram(prodStackWithHosts(servers, n), { stack: "prod", secretKeys });
            at[n] = census.total;
            bySite[n] = census.reset();
        }
        const hosts = 100 - 10;
        const topSites = [...bySite[100].entries()]
            .map(([id, s]) => ({
                where: census.describe(s.site),
                via: s.via,
                perHost: (s.count - (bySite[10].get(id)?.count ?? 0)) / hosts,
            }))
            .filter((s) => s.perHost > 0)
            .sort((a, b) => b.perHost - a.perHost);
        return { at, perHost: (at[100] - at[10]) / hosts, perHost1000: (at[1000] - at[100]) / 900, topSites };
    } finally {
        census.uninstall();
    }
}
