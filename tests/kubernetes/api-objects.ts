// Sending rendered objects to a real API server (api-server.ts): REST paths from the server's own
// discovery, real creates (server-side apply) and dry-run creates, and the pod a workload
// controller would create from a template.
/* eslint-disable @typescript-eslint/no-unsafe-argument -- objects are read as loose JSON */

import { ApiResponse, ApiServer } from "./api-server";
import { Json } from "./helpers";

interface ApiResource {
    readonly name: string;
    readonly namespaced: boolean;
}

/** The collection path of apiVersion/kind, from the server's discovery documents (cached per server). */
export class ResourcePaths {
    private readonly groups = new Map<string, Map<string, ApiResource>>();

    constructor(private readonly server: ApiServer) {}

    async collection(apiVersion: string, kind: string, namespace?: string): Promise<string> {
        const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
        let kinds = this.groups.get(apiVersion);
        if (!kinds) {
            const res = await this.server.request("GET", base);
            if (res.status !== 200) throw new Error(`discovery ${base}: ${res.status} ${JSON.stringify(res.body)}`);
            kinds = new Map(
                (res.body.resources as Json[])
                    .filter((r) => !String(r.name).includes("/"))
                    .map((r) => [String(r.kind), { name: String(r.name), namespaced: Boolean(r.namespaced) }]),
            );
            this.groups.set(apiVersion, kinds);
        }
        const resource = kinds.get(kind);
        if (!resource) throw new Error(`the API server serves no ${kind} in ${apiVersion}`);
        if (!resource.namespaced) return `${base}/${resource.name}`;
        if (!namespace) throw new Error(`${kind} is namespaced but the object names no namespace`);
        return `${base}/namespaces/${namespace}/${resource.name}`;
    }

    /** POST with ?dryRun=All: everything the server does (defaulting, validation, admission) but the write. */
    async dryRunCreate(object: Json, fieldValidation = "Strict"): Promise<ApiResponse> {
        const at = await this.collection(object.apiVersion, object.kind, object.metadata?.namespace);
        return this.server.request("POST", `${at}?dryRun=All&fieldValidation=${fieldValidation}`, object);
    }

    /** A real create-or-update by server-side apply (idempotent: the variants share namespaces). */
    async apply(object: Json): Promise<ApiResponse> {
        const at = await this.collection(object.apiVersion, object.kind, object.metadata?.namespace);
        const query = "fieldManager=consul-pulumi-tests&force=true&fieldValidation=Strict";
        return this.server.request(
            "PATCH",
            `${at}/${object.metadata.name}?${query}`,
            object,
            "application/apply-patch+yaml",
        );
    }
}

/** The API server's message of a refused request (a Status object). */
export function messageOf(res: ApiResponse): string {
    return typeof res.body.message === "string" ? res.body.message : JSON.stringify(res.body);
}

/**
 * The pod a StatefulSet, DaemonSet or Job controller would create from the workload's template:
 * its labels, annotations and spec, and for a StatefulSet the claim templates as the
 * persistentVolumeClaim volumes of ordinal 0. (Pod Security admission enforces on pods only; on a
 * workload it only warns, so enforcement is seen by creating its pod.)
 */
export function podOf(workload: Json, namespace: string): Json {
    const name = `${workload.metadata.name}-${workload.kind === "StatefulSet" ? "0" : "x7k2p"}`;
    const spec = structuredClone(workload.spec.template.spec);
    for (const claim of workload.spec.volumeClaimTemplates ?? []) {
        const claimName = `${claim.metadata.name}-${workload.metadata.name}-0`;
        spec.volumes = [...(spec.volumes ?? []), { name: claim.metadata.name, persistentVolumeClaim: { claimName } }];
    }
    return {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { ...structuredClone(workload.spec.template.metadata ?? {}), name, namespace },
        spec,
    };
}

/** A copy of the object in another namespace. */
export function inNamespace(object: Json, namespace: string): Json {
    const copy = structuredClone(object);
    copy.metadata.namespace = namespace;
    return copy;
}
