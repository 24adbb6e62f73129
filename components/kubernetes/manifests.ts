// Pure builders for the Kubernetes objects of the kubernetes and hybrid topologies: settings in,
// typed manifest pieces out. The components (consul-servers.ts, consul-clients.ts) only wrap them
// in resources, so every field here can be read by a test without a Pulumi engine.

import * as crypto from "crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { AgentConfig, clientAgentConfig, renderJson, serverAgentConfig } from "../agent/config";
import { Host, KubernetesSettings, Ports, Resources, Settings } from "../config";
import { AGENT_POLICY_NAME, agentPolicyBody, CLIENT_SELF_SERVICE } from "../security/agent-policy";
import { clientTlsName, SERVER_NAME } from "../agent/names";
import { aclAgentTokenScript, clientStartScript, leaderProbeScript } from "./scripts";

type Input<T> = pulumi.Input<T>;
type PodSpec = k8s.types.input.core.v1.PodSpec;
type Container = k8s.types.input.core.v1.Container;
type ContainerPort = k8s.types.input.core.v1.ContainerPort;
type EnvVar = k8s.types.input.core.v1.EnvVar;
type ServicePort = k8s.types.input.core.v1.ServicePort;

/** The image's `consul` user and group (uid 100, gid 1000), as the Helm chart runs them. */
export const CONSUL_UID = 100;
export const CONSUL_GID = 1000;

/** Where things are mounted inside the agent containers. */
export const PATHS = {
    config: "/consul/config",
    secretConfig: "/consul/secret",
    tls: "/consul/tls",
    ca: "/consul/ca",
    data: "/consul/data",
    extra: "/consul/extra",
    tmp: "/tmp",
    acl: "/consul/acl",
    aclPolicy: "/consul/acl-policy",
} as const;

export const FILES = {
    serverConfig: "server.json",
    clientConfig: "client.json",
    secretConfig: "secret.json",
    caCert: "ca.crt",
    tlsCert: "tls.crt",
    tlsKey: "tls.key",
    addressConfig: "addresses.json",
    managementHeader: "management-token.header",
    agentHeader: "agent-token.header",
    agentToken: "agent-token.json",
    agentPolicy: "agent-policy.json",
} as const;

/** Pod annotation whose value changes whenever the agent config or certificates change. */
export const CHECKSUM_ANNOTATION = "consul.pulumi.com/config-checksum";

export type Component = "server" | "client" | "acl-init";

export function selectorLabels(component: Component): Record<string, string> {
    return { "app.kubernetes.io/name": "consul", "app.kubernetes.io/component": component };
}

export function labels(component: Component): Record<string, string> {
    return {
        ...selectorLabels(component),
        "app.kubernetes.io/part-of": "consul",
        "app.kubernetes.io/managed-by": "pulumi",
    };
}

/**
 * sha256 over the given parts, each length-prefixed so that moving bytes between parts changes the
 * result. Callers pass a hash of the secret fragment, never the fragment itself.
 */
export function configChecksum(parts: readonly string[]): string {
    const hash = crypto.createHash("sha256");
    for (const part of parts) hash.update(`${Buffer.byteLength(part)}:`).update(part);
    return hash.digest("hex");
}

export function sha256(text: string): string {
    return crypto.createHash("sha256").update(text).digest("hex");
}

/** `host:port` for retry_join, with IPv6 addresses in brackets. */
export function joinAddress(host: string, port: number): string {
    return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The one retry_join entry in-cluster agents use: the headless service, resolving to every server pod. */
export function serverServiceHost(namespace: string): string {
    return `${SERVER_NAME}.${namespace}.svc`;
}

/** retry_join for client agents: the in-cluster servers, or the VM servers in the hybrid topology. */
export function clientRetryJoin(settings: Settings): string[] {
    if (settings.topology === "hybrid") {
        const servers = settings.vm?.servers ?? [];
        if (servers.length === 0) throw new Error("the hybrid topology needs the VM server addresses (serverHosts)");
        return servers.map((h: Host) => joinAddress(h.address, settings.ports.serfLan));
    }
    return [joinAddress(serverServiceHost(k8sOf(settings).namespace), settings.ports.serfLan)];
}

/** HTTPS base URLs of the servers, for the ACL Job. */
export function serverHttpsUrls(settings: Settings): string[] {
    if (settings.topology === "hybrid") {
        return (settings.vm?.servers ?? []).map(
            (h) => `https://${h.address.includes(":") ? `[${h.address}]` : h.address}:${settings.ports.https}`,
        );
    }
    return [`https://${serverServiceHost(k8sOf(settings).namespace)}:${settings.ports.https}`];
}

function k8sOf(settings: Settings): KubernetesSettings {
    if (!settings.kubernetes) throw new Error(`topology ${settings.topology} has no Kubernetes settings`);
    return settings.kubernetes;
}

// ---------------------------------------------------------------------------------------------
// Agent configs

/** The servers' main config (ConfigMap): data on the PVC, TLS from the mounted Secret. */
export function kubernetesServerConfig(settings: Settings): AgentConfig {
    const namespace = k8sOf(settings).namespace;
    // Servers never leave on terminate (see agent-config.ts): a rescheduled pod keeps its PVC, its
    // node ID and its Raft seat; autopilot's min_quorum keeps a crash loop from shrinking the quorum.
    return serverAgentConfig(settings, {
        dataDir: PATHS.data,
        tls: {
            caFile: `${PATHS.tls}/${FILES.caCert}`,
            certFile: `${PATHS.tls}/${FILES.tlsCert}`,
            keyFile: `${PATHS.tls}/${FILES.tlsKey}`,
        },
        retryJoin: [joinAddress(serverServiceHost(namespace), settings.ports.serfLan)],
    });
}

/** The service a client agent registers for itself (seed 003's postStart script, declaratively). */
export function clientSelfService(settings: Settings): Record<string, unknown> {
    return {
        id: CLIENT_SELF_SERVICE,
        name: CLIENT_SELF_SERVICE,
        tags: ["consul-client", "prometheus"],
        port: settings.ports.https,
        meta: { metrics_path: "/v1/agent/metrics", metrics_format: "prometheus", scheme: "https" },
        check: {
            id: "consul-client-https",
            name: "agent HTTPS API answers",
            http: `https://127.0.0.1:${settings.ports.https}/v1/status/leader`,
            // Loopback only. Verifying would need enable_agent_tls_for_checks, which would also
            // change the trust roots of every application's HTTPS check on this agent.
            tls_skip_verify: true,
            interval: "30s",
            timeout: "5s",
        },
    };
}

/** The client agents' main config (ConfigMap). Node name and addresses come from the start script. */
export function kubernetesClientConfig(settings: Settings): AgentConfig {
    const config = clientAgentConfig(settings, {
        dataDir: PATHS.data,
        tls: {
            caFile: `${PATHS.ca}/${FILES.caCert}`,
            httpsCertFile: `${PATHS.tls}/${FILES.tlsCert}`,
            httpsKeyFile: `${PATHS.tls}/${FILES.tlsKey}`,
        },
        retryJoin: clientRetryJoin(settings),
    });
    if (k8sOf(settings).clientSelfRegister) config.services = [clientSelfService(settings)];
    return config;
}

/** SANs of the client agents' HTTPS certificate: the name apps verify, and loopback for probes. */
export function clientHttpsNames(settings: Pick<Settings, "datacenter" | "domain">): {
    dnsNames: string[];
    ipAddresses: string[];
} {
    return { dnsNames: [clientTlsName(settings), "localhost"], ipAddresses: ["127.0.0.1", "::1"] };
}

/** PUT /v1/acl/token body with the fixed SecretID the agents were configured with. A secret. */
export function agentTokenBody(agentToken: string): string {
    return renderJson({
        SecretID: agentToken,
        Description: "Consul agent token (created by Pulumi)",
        Policies: [{ Name: AGENT_POLICY_NAME }],
        Local: false,
    });
}

/** A curl header file line. A secret. */
export function tokenHeader(token: string): string {
    if (!/^[0-9a-fA-F-]+$/.test(token)) throw new Error("an ACL token must be a UUID");
    return `X-Consul-Token: ${token}\n`;
}

// ---------------------------------------------------------------------------------------------
// Pod pieces

function resources(r: Resources): k8s.types.input.core.v1.ResourceRequirements {
    return {
        requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
        limits: { cpu: r.cpuLimit, memory: r.memoryLimit },
    };
}

function fieldEnv(name: string, fieldPath: string): EnvVar {
    return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/** Restricted pod security: non-root consul user, RuntimeDefault seccomp, group-owned volumes. */
export function podSecurityContext(): k8s.types.input.core.v1.PodSecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: CONSUL_UID,
        runAsGroup: CONSUL_GID,
        fsGroup: CONSUL_GID,
        seccompProfile: { type: "RuntimeDefault" },
    };
}

export function containerSecurityContext(): k8s.types.input.core.v1.SecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: CONSUL_UID,
        runAsGroup: CONSUL_GID,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
    };
}

function readinessProbe(ports: Ports, caFile: string): k8s.types.input.core.v1.Probe {
    return {
        exec: { command: ["/bin/sh", "-ec", leaderProbeScript(ports.https, caFile)] },
        initialDelaySeconds: 5,
        periodSeconds: 5,
        timeoutSeconds: 5,
        failureThreshold: 2,
        successThreshold: 1,
    };
}

interface PortSpec {
    readonly name: string;
    readonly port: number;
    readonly protocol: "TCP" | "UDP";
}

/** Every port an agent listens on; serverRpc and serf WAN only for servers. */
export function agentPorts(ports: Ports, role: "server" | "client"): PortSpec[] {
    const list: PortSpec[] = [];
    if (role === "server") list.push({ name: "server", port: ports.serverRpc, protocol: "TCP" });
    list.push(
        { name: "serflan-tcp", port: ports.serfLan, protocol: "TCP" },
        { name: "serflan-udp", port: ports.serfLan, protocol: "UDP" },
    );
    if (role === "server") {
        list.push(
            { name: "serfwan-tcp", port: ports.serfWan, protocol: "TCP" },
            { name: "serfwan-udp", port: ports.serfWan, protocol: "UDP" },
        );
    }
    list.push({ name: "https", port: ports.https, protocol: "TCP" });
    if (ports.http !== -1) list.push({ name: "http", port: ports.http, protocol: "TCP" });
    list.push({ name: "grpc-tls", port: ports.grpcTls, protocol: "TCP" });
    if (ports.dns !== -1) {
        list.push(
            { name: "dns-tcp", port: ports.dns, protocol: "TCP" },
            { name: "dns-udp", port: ports.dns, protocol: "UDP" },
        );
    }
    return list;
}

function containerPorts(specs: PortSpec[], hostPort: boolean): ContainerPort[] {
    return specs.map((p) => ({
        name: p.name,
        containerPort: p.port,
        protocol: p.protocol,
        ...(hostPort ? { hostPort: p.port } : {}),
    }));
}

// ---------------------------------------------------------------------------------------------
// Servers

export interface ServerObjectNames {
    readonly configMap: pulumi.Input<string>;
    readonly secretConfig: pulumi.Input<string>;
    readonly tlsSecret: pulumi.Input<string>;
    readonly headlessService: pulumi.Input<string>;
}

export function serverAntiAffinity(mode: "required" | "preferred"): k8s.types.input.core.v1.Affinity {
    const term = { labelSelector: { matchLabels: selectorLabels("server") }, topologyKey: "kubernetes.io/hostname" };
    return {
        podAntiAffinity:
            mode === "required"
                ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
                : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] },
    };
}

export function serverStatefulSetSpec(
    settings: Settings,
    names: ServerObjectNames,
    checksum: Input<string>,
): k8s.types.input.apps.v1.StatefulSetSpec {
    const kube = k8sOf(settings);
    const podSpec: PodSpec = {
        affinity: serverAntiAffinity(kube.antiAffinity),
        // Servers do not leave (see kubernetesServerConfig), so a stop is just a clean shutdown.
        terminationGracePeriodSeconds: 30,
        securityContext: podSecurityContext(),
        automountServiceAccountToken: false,
        volumes: [
            { name: "config", configMap: { name: names.configMap } },
            { name: "secret-config", secret: { secretName: names.secretConfig, defaultMode: 0o440 } },
            { name: "tls", secret: { secretName: names.tlsSecret, defaultMode: 0o440 } },
            { name: "tmp", emptyDir: {} },
        ],
        containers: [
            {
                name: "consul",
                image: kube.image,
                command: ["consul"],
                args: [
                    "agent",
                    `-config-file=${PATHS.config}/${FILES.serverConfig}`,
                    `-config-file=${PATHS.secretConfig}/${FILES.secretConfig}`,
                    "-advertise=$(POD_IP)",
                    "-bind=0.0.0.0",
                    "-node=$(POD_NAME)",
                ],
                env: [
                    fieldEnv("POD_IP", "status.podIP"),
                    fieldEnv("POD_NAME", "metadata.name"),
                    fieldEnv("NAMESPACE", "metadata.namespace"),
                    // For `kubectl exec ... consul members`; not secret.
                    { name: "CONSUL_HTTP_ADDR", value: `https://127.0.0.1:${settings.ports.https}` },
                    { name: "CONSUL_CACERT", value: `${PATHS.tls}/${FILES.caCert}` },
                ],
                ports: containerPorts(agentPorts(settings.ports, "server"), false),
                readinessProbe: readinessProbe(settings.ports, `${PATHS.tls}/${FILES.caCert}`),
                resources: resources(kube.serverResources),
                securityContext: containerSecurityContext(),
                volumeMounts: agentVolumeMounts([]),
            },
        ],
    };
    return {
        replicas: settings.serverCount,
        podManagementPolicy: "Parallel",
        serviceName: names.headlessService,
        selector: { matchLabels: selectorLabels("server") },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: kube.updatePartition } },
        persistentVolumeClaimRetentionPolicy: {
            whenDeleted: kube.pvcRetentionWhenDeleted,
            whenScaled: kube.pvcRetentionWhenScaled,
        },
        template: {
            metadata: { labels: labels("server"), annotations: { [CHECKSUM_ANNOTATION]: checksum } },
            spec: podSpec,
        },
        volumeClaimTemplates: [
            {
                metadata: { name: "data", labels: labels("server") },
                spec: {
                    accessModes: ["ReadWriteOnce"],
                    resources: { requests: { storage: kube.storageSize } },
                    ...(kube.storageClass ? { storageClassName: kube.storageClass } : {}),
                },
            },
        ],
    };
}

function servicePorts(specs: PortSpec[]): ServicePort[] {
    return specs.map((p) => ({ name: p.name, port: p.port, targetPort: p.port, protocol: p.protocol }));
}

/** Headless: DNS for every server pod, ready or not, so the servers can find each other to bootstrap. */
export function serverHeadlessServiceSpec(ports: Ports): k8s.types.input.core.v1.ServiceSpec {
    return {
        clusterIP: "None",
        publishNotReadyAddresses: true,
        selector: selectorLabels("server"),
        ports: servicePorts(agentPorts(ports, "server")),
    };
}

export function uiServiceSpec(settings: Settings): k8s.types.input.core.v1.ServiceSpec {
    return {
        type: k8sOf(settings).uiServiceType,
        selector: selectorLabels("server"),
        ports: [{ name: "https", port: 443, targetPort: settings.ports.https, protocol: "TCP" }],
    };
}

/** One server at a time may be evicted; none when there is only one. */
export function serverPdbSpec(serverCount: number): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { maxUnavailable: serverCount === 1 ? 0 : 1, selector: { matchLabels: selectorLabels("server") } };
}

// ---------------------------------------------------------------------------------------------
// Client agents

export interface ClientObjectNames {
    readonly configMap: pulumi.Input<string>;
    readonly secretConfig: pulumi.Input<string>;
    readonly httpsSecret: pulumi.Input<string>;
    readonly caConfigMap: pulumi.Input<string>;
}

export function clientPrometheusAnnotations(settings: Settings): Record<string, string> {
    if (!settings.telemetry.enabled) return {};
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/scheme": "https",
        "prometheus.io/path": "/v1/agent/metrics",
        "prometheus.io/port": String(settings.ports.https),
    };
}

/** Root, CHOWN/FOWNER only: hand the hostPath data dir to the consul user before it starts. */
export function dataDirInitContainer(image: string): Container {
    return {
        name: "data-dir-owner",
        image,
        command: ["/bin/sh", "-ec", `chown ${CONSUL_UID}:${CONSUL_GID} ${PATHS.data}\nchmod 0700 ${PATHS.data}\n`],
        securityContext: {
            runAsUser: 0,
            runAsNonRoot: false,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"], add: ["CHOWN", "FOWNER"] },
            seccompProfile: { type: "RuntimeDefault" },
        },
        resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "50m", memory: "32Mi" } },
        volumeMounts: [{ name: "data", mountPath: PATHS.data }],
    };
}

/** The mounts every agent container has (data, config, secret fragment, TLS, tmp), with the role's own between. */
function agentVolumeMounts(roleMounts: k8s.types.input.core.v1.VolumeMount[]): k8s.types.input.core.v1.VolumeMount[] {
    return [
        { name: "data", mountPath: PATHS.data },
        { name: "config", mountPath: PATHS.config, readOnly: true },
        { name: "secret-config", mountPath: PATHS.secretConfig, readOnly: true },
        { name: "tls", mountPath: PATHS.tls, readOnly: true },
        ...roleMounts,
        { name: "tmp", mountPath: PATHS.tmp },
    ];
}

export function clientDaemonSetSpec(
    settings: Settings,
    names: ClientObjectNames,
    checksum: Input<string>,
): k8s.types.input.apps.v1.DaemonSetSpec {
    const kube = k8sOf(settings);
    const hostNetwork = kube.clientNetworkMode === "hostNetwork";
    const caFile = `${PATHS.ca}/${FILES.caCert}`;
    const podSpec: PodSpec = {
        hostNetwork,
        // With hostNetwork, ClusterFirst would silently fall back to the node's resolver.
        dnsPolicy: hostNetwork ? "ClusterFirstWithHostNet" : "ClusterFirst",
        // leave_on_terminate: SIGTERM makes the agent leave the cluster gracefully (seed 003's
        // preStop `consul leave`, without needing a token in a hook).
        terminationGracePeriodSeconds: 30,
        securityContext: podSecurityContext(),
        automountServiceAccountToken: false,
        ...(kube.clientTolerateAll ? { tolerations: [{ operator: "Exists" }] } : {}),
        volumes: [
            { name: "config", configMap: { name: names.configMap } },
            { name: "secret-config", secret: { secretName: names.secretConfig, defaultMode: 0o440 } },
            { name: "tls", secret: { secretName: names.httpsSecret, defaultMode: 0o440 } },
            { name: "ca", configMap: { name: names.caConfigMap } },
            // The node ID lives here: a restarted pod on the same node is the same Consul node.
            { name: "data", hostPath: { path: kube.clientDataHostPath, type: "DirectoryOrCreate" } },
            { name: "extra", emptyDir: {} },
            { name: "tmp", emptyDir: {} },
        ],
        initContainers: [dataDirInitContainer(kube.image)],
        containers: [
            {
                name: "consul",
                image: kube.image,
                command: [
                    "/bin/sh",
                    "-ec",
                    clientStartScript({
                        configFiles: [
                            `${PATHS.config}/${FILES.clientConfig}`,
                            `${PATHS.secretConfig}/${FILES.secretConfig}`,
                        ],
                        addressConfigFile: `${PATHS.extra}/${FILES.addressConfig}`,
                    }),
                ],
                env: [
                    fieldEnv("NODE_NAME", "spec.nodeName"),
                    fieldEnv("HOST_IP", "status.hostIP"),
                    fieldEnv("POD_IP", "status.podIP"),
                    { name: "CONSUL_HTTP_ADDR", value: `https://127.0.0.1:${settings.ports.https}` },
                    { name: "CONSUL_CACERT", value: caFile },
                ],
                ports: containerPorts(agentPorts(settings.ports, "client"), !hostNetwork),
                readinessProbe: readinessProbe(settings.ports, caFile),
                resources: resources(kube.clientResources),
                securityContext: containerSecurityContext(),
                volumeMounts: agentVolumeMounts([
                    { name: "ca", mountPath: PATHS.ca, readOnly: true },
                    { name: "extra", mountPath: PATHS.extra },
                ]),
            },
        ],
    };
    return {
        selector: { matchLabels: selectorLabels("client") },
        minReadySeconds: 10,
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
            metadata: {
                labels: labels("client"),
                annotations: { [CHECKSUM_ANNOTATION]: checksum, ...clientPrometheusAnnotations(settings) },
            },
            spec: podSpec,
        },
    };
}

// ---------------------------------------------------------------------------------------------
// ACL agent token Job

export interface AclJobNames {
    readonly secret: pulumi.Input<string>;
    readonly policyConfigMap: pulumi.Input<string>;
    readonly caConfigMap: pulumi.Input<string>;
}

export function aclJobSpec(settings: Settings, names: AclJobNames): k8s.types.input.batch.v1.JobSpec {
    const kube = k8sOf(settings);
    const script = aclAgentTokenScript({
        caFile: `${PATHS.ca}/${FILES.caCert}`,
        managementHeaderFile: `${PATHS.acl}/${FILES.managementHeader}`,
        agentHeaderFile: `${PATHS.acl}/${FILES.agentHeader}`,
        policyFile: `${PATHS.aclPolicy}/${FILES.agentPolicy}`,
        policyName: AGENT_POLICY_NAME,
        tokenFile: `${PATHS.acl}/${FILES.agentToken}`,
        maxAttempts: 120,
    });
    return {
        backoffLimit: 6,
        template: {
            // A changed policy changes the pod template, so the Job is replaced and runs again.
            metadata: { labels: labels("acl-init"), annotations: { [CHECKSUM_ANNOTATION]: sha256(agentPolicyBody()) } },
            spec: {
                restartPolicy: "OnFailure",
                securityContext: podSecurityContext(),
                automountServiceAccountToken: false,
                volumes: [
                    { name: "acl", secret: { secretName: names.secret, defaultMode: 0o440 } },
                    { name: "policy", configMap: { name: names.policyConfigMap } },
                    { name: "ca", configMap: { name: names.caConfigMap } },
                ],
                containers: [
                    {
                        name: "create-agent-token",
                        image: kube.image,
                        command: ["/bin/sh", "-ec", script],
                        env: [{ name: "CONSUL_ADDRS", value: serverHttpsUrls(settings).join(" ") }],
                        resources: {
                            requests: { cpu: "10m", memory: "32Mi" },
                            limits: { cpu: "100m", memory: "64Mi" },
                        },
                        securityContext: containerSecurityContext(),
                        volumeMounts: [
                            { name: "acl", mountPath: PATHS.acl, readOnly: true },
                            { name: "policy", mountPath: PATHS.aclPolicy, readOnly: true },
                            { name: "ca", mountPath: PATHS.ca, readOnly: true },
                        ],
                    },
                ],
            },
        },
    };
}
