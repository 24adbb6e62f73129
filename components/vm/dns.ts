// DNS on the VM clients (dnsForwarder): a systemd-resolved drop-in that routes the Consul domain,
// and only it, to the local agent's DNS port, so `getent hosts web.service.consul` works for any
// program on the host. The apply script installs it (after checking that systemd-resolved is the
// host's resolver), restarts systemd-resolved when it changed and removes it when the key is off;
// consul itself is not restarted for it. The DNS token (dnsDefaultToken) is in host-files.ts and
// the DNS ACL step in cluster.ts. Pure.

import type { Settings, VmDnsSettings } from "../config";
import { NodeFile } from "./bundle";
import { PATHS } from "./paths";
import { renderSections, UnitSection } from "./systemd";

/** A resolved.conf drop-in (resolved.conf(5)): the [Resolve] section only. */
export interface ResolvedDropIn {
    readonly Resolve: UnitSection;
}

/**
 * `Domains=~<domain>` is a routing-only domain: with it the global DNS server below gets queries
 * for that domain and nothing else (it is not a default route), and no search domain is added.
 * DNS= with a port needs systemd 246 (Debian 11 has 247).
 */
export function resolvedDropIn(settings: Pick<Settings, "domain" | "ports">): ResolvedDropIn {
    if (settings.ports.dns < 1) throw new Error("the DNS forwarder needs the agents' DNS port");
    return { Resolve: { DNS: `127.0.0.1:${settings.ports.dns}`, Domains: `~${settings.domain}` } };
}

export function renderResolvedDropIn(dropIn: ResolvedDropIn): string {
    return (
        "# Managed by consul-pulumi (dnsForwarder): the Consul domain goes to the local agent.\n" +
        renderSections([["Resolve", dropIn.Resolve]])
    );
}

/** The forwarder's files on a client (none on servers: they hold no default token, so no answers). */
export function dnsForwarderFiles(
    dns: VmDnsSettings,
    settings: Pick<Settings, "domain" | "ports">,
    role: "server" | "client",
): NodeFile[] {
    if (role !== "client" || dns.forwarder !== "systemd-resolved") return [];
    const content = renderResolvedDropIn(resolvedDropIn(settings));
    return [{ path: PATHS.resolvedDropIn, mode: "0644", owner: "root", group: "root", content }];
}
