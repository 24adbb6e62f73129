// The Kubernetes objects a mocked program run registered, as the manifests `kubectl apply` would
// get: apiVersion and kind from the resource type token, metadata and the rest from the inputs.

import { EvaluatedStack, RecordedResource } from "../mocks";

export interface Manifest {
    /** The Pulumi resource name, unique within one program run. */
    readonly resourceName: string;
    readonly object: Record<string, unknown>;
}

/**
 * `kubernetes:apps/v1:StatefulSet` → apps/v1, StatefulSet; the core group is `v1` alone. Undefined
 * for types that are no Kubernetes object (the provider, components).
 */
export function apiVersionKind(type: string): { apiVersion: string; kind: string } | undefined {
    const match = /^kubernetes:([a-z0-9.-]+)\/([a-z0-9]+):([A-Za-z0-9]+)$/.exec(type);
    if (!match) return undefined;
    const [, group, version, kind] = match;
    return { apiVersion: group === "core" ? version : `${group}/${version}`, kind };
}

function manifestOf(resource: RecordedResource): Manifest | undefined {
    const gvk = apiVersionKind(resource.type);
    if (!gvk) return undefined;
    const inputs = resource.inputs;
    for (const field of ["apiVersion", "kind"] as const) {
        if (inputs[field] !== undefined && inputs[field] !== gvk[field]) {
            throw new Error(
                `${resource.name}: ${field} ${JSON.stringify(inputs[field])} does not match ${resource.type}`,
            );
        }
    }
    const rest = Object.fromEntries(Object.entries(inputs).filter(([k]) => k !== "apiVersion" && k !== "kind"));
    return { resourceName: resource.name, object: { ...gvk, ...rest } };
}

/** Every Kubernetes object of the run, in registration order. */
export function manifestsOf(result: EvaluatedStack): Manifest[] {
    return result.mocks.resources.map(manifestOf).filter((m): m is Manifest => m !== undefined);
}
