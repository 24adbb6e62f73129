// The service a client agent registers for itself (seed 003's postStart script, declaratively),
// on Kubernetes and on VM client hosts: Prometheus finds the client agents through it.

import type { Settings } from "../config";

/** The service name client agents register themselves under. */
export const CLIENT_SELF_SERVICE = "consul-client";

/** The service definition (agent config `services` entry); its port is the agent's HTTPS API. */
export function clientSelfService(settings: {
    readonly ports: Pick<Settings["ports"], "https">;
}): Record<string, unknown> {
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
