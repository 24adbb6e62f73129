// The kubernetes and hybrid topologies' settings: namespace, image, storage, scheduling and the
// client DaemonSet.

import * as fs from "fs";
import * as path from "path";
import type { Reader } from "./read";
import { DNS_LABEL, expandHome, HOSTNAME } from "./read";
import { ConfigKey, DEFAULT_CONSUL_VERSION } from "./schema";
import type { KubernetesSettings, Resources } from "./types";

// Kubernetes quantity grammar (resource.Quantity), without the signs we never want here.
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E|[eE]\d+)?$/;
// Image reference: [registry[:port]/]path[:tag][@digest]
const IMAGE_REF =
    /^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

const QUANTITY_SUFFIX: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
};

/** A Kubernetes quantity in base units (cores or bytes), or undefined if it is not one. */
export function parseQuantity(text: string): number | undefined {
    const match = QUANTITY.exec(text);
    if (!match) return undefined;
    const suffix = match[3] ?? "";
    const base = parseFloat(match[1]);
    if (/^[eE]\d+$/.test(suffix)) return base * 10 ** parseInt(suffix.slice(1), 10);
    return base * (suffix === "" ? 1 : QUANTITY_SUFFIX[suffix]);
}

export function readKubernetes(r: Reader, consulVersion: string): KubernetesSettings {
    const { problems, key, str, int, bool, oneOf, list } = r;
    const namespace = str("k8sNamespace");
    if (namespace !== undefined && !DNS_LABEL.test(namespace)) {
        problems.add(
            key("k8sNamespace"),
            namespace,
            "a namespace must be a DNS label (lower-case letters, digits, '-', at most 63 characters).",
        );
    }
    const image = str("image") || `hashicorp/consul:${consulVersion}`;
    if (!IMAGE_REF.test(image)) {
        problems.add(
            key("image"),
            str("image"),
            `is not a container image reference; use e.g. hashicorp/consul:${DEFAULT_CONSUL_VERSION} or registry.example.com/consul@sha256:<digest>.`,
        );
    }
    const kubeconfig = str("k8sKubeconfig");
    if (kubeconfig && !fs.existsSync(expandHome(kubeconfig))) {
        problems.add(
            key("k8sKubeconfig"),
            kubeconfig,
            "no such file; give the path of a kubeconfig, or leave it empty for the ambient one.",
        );
    }

    const storageSize = str("storageSize");
    const bytes = storageSize === undefined ? undefined : parseQuantity(storageSize);
    if (storageSize !== undefined && (bytes === undefined || bytes < 2 ** 20)) {
        problems.add(key("storageSize"), storageSize, "must be a Kubernetes quantity of at least 1Mi, such as 10Gi.");
    }
    const storageClass = str("storageClass");
    if (storageClass && !HOSTNAME.test(storageClass)) {
        problems.add(
            key("storageClass"),
            storageClass,
            "a StorageClass name must be a DNS subdomain (lower-case letters, digits, '-' and '.').",
        );
    }

    const updatePartition = int("updatePartition");
    if (updatePartition !== undefined && updatePartition < 0) {
        problems.add(
            key("updatePartition"),
            updatePartition,
            "must be 0 or more: pods with an ordinal at or above it are updated.",
        );
    }

    const resources = (role: "server" | "client"): Resources => {
        const names = {
            cpuRequest: `${role}CpuRequest`,
            cpuLimit: `${role}CpuLimit`,
            memoryRequest: `${role}MemoryRequest`,
            memoryLimit: `${role}MemoryLimit`,
        } as const satisfies Record<keyof Resources, ConfigKey>;
        const values = {} as Record<keyof Resources, string>;
        const amounts = {} as Record<keyof Resources, number | undefined>;
        for (const [field, name] of Object.entries(names) as [keyof Resources, ConfigKey][]) {
            values[field] = str(name);
            amounts[field] = values[field] === undefined ? undefined : parseQuantity(values[field]);
            if (values[field] !== undefined && (amounts[field] === undefined || amounts[field] === 0)) {
                problems.add(
                    key(name),
                    values[field],
                    `must be a positive Kubernetes quantity such as ${field.startsWith("cpu") ? "500m" : "512Mi"}.`,
                );
            }
        }
        for (const kind of ["cpu", "memory"] as const) {
            const request = amounts[`${kind}Request`];
            const limit = amounts[`${kind}Limit`];
            if (request !== undefined && limit !== undefined && request > limit) {
                problems.add(
                    key(names[`${kind}Request`]),
                    values[`${kind}Request`],
                    `is above ${key(names[`${kind}Limit`])} (${values[`${kind}Limit`]}); Kubernetes rejects requests above limits, so lower the request or raise the limit.`,
                );
            }
        }
        return values;
    };

    const clientDataHostPath = str("clientDataHostPath");
    if (clientDataHostPath !== undefined && (!path.isAbsolute(clientDataHostPath) || clientDataHostPath === "/")) {
        problems.add(
            key("clientDataHostPath"),
            clientDataHostPath,
            "must be an absolute path other than /, such as /var/lib/consul-client.",
        );
    }

    const appNamespaces = list("k8sAppNamespaces");
    for (const ns of appNamespaces) {
        if (!DNS_LABEL.test(ns)) {
            problems.add(
                key("k8sAppNamespaces"),
                ns,
                "each application namespace must be a DNS label (lower-case letters, digits, '-', at most 63 characters).",
            );
        }
    }
    const clientNamespace = readClientNamespace(r, namespace, appNamespaces);

    return {
        namespace,
        clientNamespace,
        createNamespace: bool("k8sCreateNamespace"),
        kubeconfig: kubeconfig || undefined,
        context: str("k8sContext") || undefined,
        image,
        storageClass: storageClass || undefined,
        storageSize,
        pvcRetentionWhenDeleted: oneOf("pvcRetentionWhenDeleted", ["Retain", "Delete"] as const),
        pvcRetentionWhenScaled: oneOf("pvcRetentionWhenScaled", ["Retain", "Delete"] as const),
        antiAffinity: oneOf("antiAffinity", ["required", "preferred"] as const),
        uiServiceType: oneOf("uiServiceType", ["ClusterIP", "NodePort", "LoadBalancer"] as const),
        updatePartition,
        serverResources: resources("server"),
        clientResources: resources("client"),
        clientsEnabled: bool("clientsEnabled"),
        clientNetworkMode: oneOf("clientNetworkMode", ["hostNetwork", "hostPort"] as const),
        clientDataHostPath,
        clientTolerateAll: bool("clientTolerateAll"),
        clientSelfRegister: bool("clientSelfRegister"),
        appNamespaces: [...new Set(appNamespaces)],
    };
}

/**
 * The client agents' own namespace: Pod Security enforces `privileged` there (their hostNetwork
 * and hostPath data dir, seed 003) and `restricted` in the servers' one, so the two must differ,
 * and no application should run where `privileged` is enforced.
 */
function readClientNamespace(r: Reader, namespace: string, appNamespaces: readonly string[]): string {
    const { problems, key, str } = r;
    const given = str("k8sClientNamespace");
    const clientNamespace = given || `${namespace}-clients`;
    // An invalid k8sNamespace is reported once, above; without clients the name is unused.
    if ((!given && !DNS_LABEL.test(namespace)) || !r.bool("clientsEnabled")) return clientNamespace;
    if (!DNS_LABEL.test(clientNamespace)) {
        problems.add(
            key(given ? "k8sClientNamespace" : "k8sNamespace"),
            given || namespace,
            given
                ? "a namespace must be a DNS label (lower-case letters, digits, '-', at most 63 characters)."
                : `the client agents' namespace would be "${clientNamespace}", not a DNS label (at most 63 characters); set consul:k8sClientNamespace, or shorten this one.`,
        );
    } else if (clientNamespace === namespace) {
        problems.add(
            key("k8sClientNamespace"),
            given,
            `must differ from consul:k8sNamespace: the servers' namespace enforces Pod Security "restricted", which refuses the client agents (hostNetwork, hostPath); leave it empty for "${namespace}-clients".`,
        );
    } else if (appNamespaces.includes(clientNamespace)) {
        problems.add(
            key("k8sAppNamespaces"),
            clientNamespace,
            `is the client agents' namespace, where Pod Security enforces "privileged": run applications in a namespace of their own.`,
        );
    }
    return clientNamespace;
}
