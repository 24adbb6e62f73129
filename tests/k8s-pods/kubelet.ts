// A few things a kubelet does for one pod, as shell for a systemd host (test code only): write the
// ConfigMap/Secret volumes with their modes and fsGroup, create emptyDirs, hostPaths and a
// persistent claim directory, resolve the downward-API environment, expand $(VAR) in command and
// args, and run each container as a transient systemd unit with the pod's user, group,
// capabilities, read-only root and volume mounts (BindPaths). What it does not do is listed in
// the README (Testing): scheduling, CNI, kube-proxy, probe timing, restarts, resource limits.
/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- manifests are read as loose JSON */

import { shellQuote } from "../../components/shell";
import { Json } from "../kubernetes/helpers";
import { Manifest } from "../kubernetes/render";

/** The PATH of the hashicorp/consul (Alpine) image, which the kubelet hands every container. */
export const IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Where the hosts keep pods (removed with the pod) and claims (kept, like a PVC). */
export const PODS_DIR = "/var/lib/kubelet-emu/pods";
export const CLAIMS_DIR = "/var/lib/kubelet-emu/claims";
/** Reads NUL-separated env and argv files and execs with exactly that environment. */
export const EXEC_HELPER = "/usr/local/lib/kubelet-emu/exec";

export const EXEC_HELPER_SOURCE = [
    "#!/bin/bash",
    "# usage: exec <env file> <argv file> (NUL-separated): a container's process, env as the kubelet sets it",
    "set -euo pipefail",
    "mapfile -d '' -t envs <\"$1\"",
    "mapfile -d '' -t argv <\"$2\"",
    'exec /usr/bin/env -i -- "${envs[@]}" "${argv[@]}"',
    "",
].join("\n");

export interface PodPlacement {
    readonly podName: string;
    readonly namespace: string;
    readonly nodeName: string;
    readonly hostIp: string;
    /** With hostNetwork the host's address; here every pod has its host to itself, so the same. */
    readonly podIp: string;
}

/**
 * $(VAR) expansion as the kubelet does it for command, args and env values: a defined variable
 * is replaced, $$ is a literal $, and an undefined $(VAR) stays as written.
 */
export function expandKubelet(text: string, env: ReadonlyMap<string, string>): string {
    let out = "";
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (c !== "$" || i + 1 >= text.length) {
            out += c;
            continue;
        }
        const next = text[i + 1];
        if (next === "$") {
            out += "$";
            i++;
        } else if (next === "(") {
            const close = text.indexOf(")", i + 2);
            if (close < 0) {
                out += text.slice(i);
                break;
            }
            const name = text.slice(i + 2, close);
            out += env.has(name) ? (env.get(name) as string) : text.slice(i, close + 1);
            i = close;
        } else {
            out += c;
        }
    }
    return out;
}

function fieldValue(fieldPath: string, p: PodPlacement): string {
    switch (fieldPath) {
        case "metadata.name":
            return p.podName;
        case "metadata.namespace":
            return p.namespace;
        case "spec.nodeName":
            return p.nodeName;
        case "status.hostIP":
            return p.hostIp;
        case "status.podIP":
            return p.podIp;
        default:
            throw new Error(`kubelet-emu: unsupported downward-API field ${fieldPath}`);
    }
}

/** The container's environment in order: PATH and HOSTNAME as the runtime sets them, then env[]. */
export function containerEnv(container: Json, p: PodPlacement): Map<string, string> {
    const env = new Map<string, string>([
        ["PATH", IMAGE_PATH],
        ["HOSTNAME", p.podName],
    ]);
    for (const e of container.env ?? []) {
        if (e.value !== undefined) env.set(e.name, expandKubelet(String(e.value), env));
        else if (e.valueFrom?.fieldRef) env.set(e.name, fieldValue(e.valueFrom.fieldRef.fieldPath, p));
        else throw new Error(`kubelet-emu: unsupported env source for ${e.name}`);
    }
    return env;
}

export function containerArgv(container: Json, env: ReadonlyMap<string, string>): string[] {
    if (!container.command) throw new Error(`kubelet-emu: ${container.name} relies on the image entrypoint`);
    return [...container.command, ...(container.args ?? [])].map((a: string) => expandKubelet(a, env));
}

function nulJoin(items: readonly string[]): string {
    return items.map((i) => `${i}\0`).join("");
}

function findObject(objects: readonly Manifest[], kind: string, name: string, namespace: string): Json {
    const found = objects.find(
        (m) =>
            m.object.kind === kind &&
            (m.object.metadata as Json).name === name &&
            (m.object.metadata as Json).namespace === namespace,
    );
    if (!found) throw new Error(`kubelet-emu: ${kind} ${namespace}/${name} is not rendered`);
    return found.object;
}

/** Files of a ConfigMap or Secret volume: path → content, with the modes the kubelet gives them. */
export function projectedFiles(
    volume: Json,
    objects: readonly Manifest[],
    namespace: string,
): { path: string; content: Buffer; mode: number }[] {
    const source = volume.configMap ?? volume.secret;
    const obj = volume.configMap
        ? findObject(objects, "ConfigMap", volume.configMap.name, namespace)
        : findObject(objects, "Secret", volume.secret.secretName, namespace);
    const data = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(obj.data ?? {}))
        data.set(k, volume.secret ? Buffer.from(String(v), "base64") : Buffer.from(String(v)));
    for (const [k, v] of Object.entries(obj.binaryData ?? {})) data.set(k, Buffer.from(String(v), "base64"));
    for (const [k, v] of Object.entries(obj.stringData ?? {})) data.set(k, Buffer.from(String(v)));
    const defaultMode: number = source.defaultMode ?? 0o644;
    const items: Json[] = source.items ?? [...data.keys()].map((key) => ({ key, path: key }));
    return items.map((item) => {
        const content = data.get(item.key);
        if (content === undefined) throw new Error(`kubelet-emu: ${volume.name} has no key ${item.key}`);
        return { path: item.path, content, mode: item.mode ?? defaultMode };
    });
}

export interface PodContext {
    readonly placement: PodPlacement;
    /** StatefulSet, DaemonSet or Job. */
    readonly workload: Json;
    readonly objects: readonly Manifest[];
}

function podDir(p: PodPlacement): string {
    return `${PODS_DIR}/${p.podName}`;
}

/** Host directory backing a volume (or a claim template, for StatefulSet pods). */
function volumeSource(ctx: PodContext, name: string): { dir: string; readOnlyApi: boolean } {
    const spec = ctx.workload.spec.template.spec;
    const volume = (spec.volumes ?? []).find((v: Json) => v.name === name);
    if (volume?.hostPath) return { dir: volume.hostPath.path, readOnlyApi: false };
    if (volume)
        return {
            dir: `${podDir(ctx.placement)}/volumes/${name}`,
            readOnlyApi: Boolean(volume.configMap ?? volume.secret),
        };
    const claim = (ctx.workload.spec.volumeClaimTemplates ?? []).find((c: Json) => c.metadata.name === name);
    if (claim) return { dir: `${CLAIMS_DIR}/${name}-${ctx.placement.podName}`, readOnlyApi: false };
    throw new Error(`kubelet-emu: ${ctx.placement.podName} mounts ${name}, which is no volume or claim template`);
}

/** Shell (run as root on the host) that prepares the pod's volumes, as a fresh pod would get them. */
export function podSetupScript(ctx: PodContext): string {
    const p = ctx.placement;
    const spec = ctx.workload.spec.template.spec;
    const fsGroup: number | undefined = spec.securityContext?.fsGroup;
    const q = shellQuote;
    const lines = [
        "set -euo pipefail",
        `rm -rf ${q(podDir(p))}`,
        `mkdir -p ${q(podDir(p) + "/volumes")} ${q(podDir(p) + "/containers")}`,
    ];
    for (const v of spec.volumes ?? []) {
        const dir = `${podDir(p)}/volumes/${v.name}`;
        if (v.configMap || v.secret) {
            lines.push(`mkdir -m 0755 ${q(dir)}`);
            for (const f of projectedFiles(v, ctx.objects, p.namespace)) {
                const file = `${dir}/${f.path}`;
                lines.push(
                    `mkdir -p "$(dirname ${q(file)})"`,
                    `printf %s ${q(f.content.toString("base64"))} | base64 -d >${q(file)}`,
                    `chmod ${f.mode.toString(8)} ${q(file)}`,
                    // The kubelet gives API-data files the pod's fsGroup (and keeps root as owner).
                    `chown 0:${fsGroup ?? 0} ${q(file)}`,
                );
            }
        } else if (v.emptyDir) {
            lines.push(`mkdir -m 0777 ${q(dir)}`);
            if (fsGroup !== undefined) lines.push(`chgrp ${fsGroup} ${q(dir)}`, `chmod 2777 ${q(dir)}`);
        } else if (v.hostPath) {
            if (v.hostPath.type !== "DirectoryOrCreate")
                throw new Error(`kubelet-emu: hostPath type ${v.hostPath.type}`);
            lines.push(`[ -d ${q(v.hostPath.path)} ] || mkdir -p -m 0755 ${q(v.hostPath.path)}`);
        } else {
            throw new Error(`kubelet-emu: unsupported volume ${JSON.stringify(v)}`);
        }
    }
    for (const claim of ctx.workload.spec.volumeClaimTemplates ?? []) {
        // A bound PVC keeps its data across pods; the kubelet applies fsGroup to it on every mount.
        const dir = `${CLAIMS_DIR}/${claim.metadata.name}-${p.podName}`;
        lines.push(`[ -d ${q(dir)} ] || mkdir -p -m 0755 ${q(dir)}`);
        if (fsGroup !== undefined)
            lines.push(
                `chgrp -R ${fsGroup} ${q(dir)}`,
                `chmod -R g+rwX ${q(dir)}`,
                `find ${q(dir)} -type d -exec chmod g+s {} +`,
            );
    }
    // Mount points on the host's root, which the units mount over in their own namespace.
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        for (const m of c.volumeMounts ?? []) {
            volumeSource(ctx, m.name);
            lines.push(`mkdir -p ${q(m.mountPath)}`);
        }
    }
    lines.push("");
    return lines.join("\n");
}

export interface ContainerUnit {
    readonly unit: string;
    /** Shell (run as root on the host) that writes the container's env/argv files and starts it. */
    readonly startScript: string;
    readonly envFile: string;
    readonly env: Map<string, string>;
}

function capabilityName(cap: string): string {
    return cap.startsWith("CAP_") ? cap : `CAP_${cap}`;
}

/** The systemd properties that stand in for the container's mounts and security context. */
export function unitProperties(ctx: PodContext, container: Json): string[] {
    const spec = ctx.workload.spec.template.spec;
    const pod = spec.securityContext ?? {};
    const sc = container.securityContext ?? {};
    const props: string[] = [];
    if (sc.readOnlyRootFilesystem) props.push("ReadOnlyPaths=/");
    for (const m of container.volumeMounts ?? []) {
        const src = volumeSource(ctx, m.name);
        props.push(`${m.readOnly || src.readOnlyApi ? "BindReadOnlyPaths" : "BindPaths"}=${src.dir}:${m.mountPath}`);
    }
    if (sc.allowPrivilegeEscalation === false) props.push("NoNewPrivileges=yes");
    const drop: string[] = sc.capabilities?.drop ?? [];
    const add: string[] = sc.capabilities?.add ?? [];
    if (drop.includes("ALL")) props.push(`CapabilityBoundingSet=${add.map(capabilityName).join(" ")}`);
    if (pod.fsGroup !== undefined) props.push(`SupplementaryGroups=${pod.fsGroup}`);
    const runAsUser = sc.runAsUser ?? pod.runAsUser;
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) && (runAsUser === undefined || runAsUser === 0))
        throw new Error(`kubelet-emu: ${container.name} must run as non-root but has no non-root runAsUser`);
    return props;
}

export function containerUnit(ctx: PodContext, container: Json, kind: "init" | "main"): ContainerUnit {
    const p = ctx.placement;
    const spec = ctx.workload.spec.template.spec;
    const pod = spec.securityContext ?? {};
    const sc = container.securityContext ?? {};
    const uid: number = sc.runAsUser ?? pod.runAsUser ?? 0;
    const gid: number = sc.runAsGroup ?? pod.runAsGroup ?? 0;
    const env = containerEnv(container, p);
    const argv = containerArgv(container, env);
    const dir = `${podDir(p)}/containers/${container.name}`;
    const unit = `pod-${p.podName}-${container.name}`;
    const q = shellQuote;
    const envFile = `${dir}/env`;
    const props = unitProperties(ctx, container).map((prop) => `-p ${q(prop)}`);
    const run = [
        "systemd-run",
        `--unit=${q(unit)}`,
        "--quiet",
        "--collect",
        ...(kind === "init" ? ["--wait", "--pipe"] : []),
        `--uid=${uid}`,
        `--gid=${gid}`,
        ...props,
        EXEC_HELPER,
        q(envFile),
        q(`${dir}/argv`),
        // stdin is the rest of the script being run (bash -s over SSH): keep it away from the unit.
        "</dev/null",
    ].join(" ");
    const startScript = [
        "set -euo pipefail",
        `mkdir -p ${q(dir)}`,
        `printf %s ${q(Buffer.from(nulJoin([...env].map(([k, v]) => `${k}=${v}`))).toString("base64"))} | base64 -d >${q(envFile)}`,
        `printf %s ${q(Buffer.from(nulJoin(argv)).toString("base64"))} | base64 -d >${q(dir + "/argv")}`,
        `chmod 0644 ${q(envFile)} ${q(dir + "/argv")}`,
        `systemctl reset-failed ${q(unit)} 2>/dev/null || true`,
        run,
        "",
    ].join("\n");
    return { unit, startScript, envFile, env };
}

/**
 * Shell that runs an exec probe's command as written inside the running container (its mount
 * namespace, user and environment), as `kubectl exec`/the kubelet would, with the probe's timeout.
 */
export function execProbeScript(ctx: PodContext, container: Json, probe: Json): string {
    const unit = containerUnit(ctx, container, "main");
    const spec = ctx.workload.spec.template.spec;
    const uid: number = container.securityContext?.runAsUser ?? spec.securityContext?.runAsUser ?? 0;
    const gid: number = container.securityContext?.runAsGroup ?? spec.securityContext?.runAsGroup ?? 0;
    const q = shellQuote;
    const argvFile = `${PODS_DIR}/${ctx.placement.podName}/containers/${container.name}/probe-argv`;
    return [
        "set -euo pipefail",
        `pid=$(systemctl show -p MainPID --value ${q(unit.unit)})`,
        `[ "$pid" -gt 0 ] || { echo "container ${unit.unit} is not running" >&2; exit 3; }`,
        `printf %s ${q(Buffer.from(nulJoin(probe.exec.command)).toString("base64"))} | base64 -d >${q(argvFile)}`,
        `timeout ${Number(probe.timeoutSeconds ?? 1)} nsenter -t "$pid" -m -S ${uid} -G ${gid} -- ${EXEC_HELPER} ${q(unit.envFile)} ${q(argvFile)} </dev/null`,
        "",
    ].join("\n");
}
