// DNS on the VM clients: the DNS token as their default token (dnsDefaultToken) and a local
// forwarder for <domain> names (dnsForwarder). Both off by default; both vm only (the hybrid
// topology's clients are pods, see docs/dns.md for CoreDNS). A key that cannot work is refused.

import type { Reader } from "./read";
import type { ConfigKey } from "./schema";
import { DNS_FORWARDERS, type Ports, type Settings, type Topology, type VmDnsSettings } from "./types";

export function readDns(
    r: Reader,
    topology: Topology,
    acl: Settings["acl"],
    ports: Pick<Ports, "dns">,
): VmDnsSettings | undefined {
    const { problems, key } = r;
    const defaultToken = r.bool("dnsDefaultToken");
    const forwarder = r.oneOf("dnsForwarder", DNS_FORWARDERS);
    if (!defaultToken && forwarder === "none") return undefined;
    const set: [ConfigKey, boolean | string][] = [];
    if (defaultToken) set.push(["dnsDefaultToken", defaultToken]);
    if (forwarder !== "none") set.push(["dnsForwarder", forwarder]);
    for (const [name, value] of set) {
        if (topology !== "vm") {
            problems.add(
                key(name),
                value,
                `is only used by the vm topology, not ${topology} (client agents there are pods; docs/dns.md has the CoreDNS stub domain); remove it.`,
            );
        } else if (ports.dns === -1) {
            problems.add(
                key(name),
                value,
                `needs the agents' DNS interface, which ${key("dnsPort")} -1 turns off; set dnsPort (8600) or remove ${key(name)}.`,
            );
        }
    }
    if (defaultToken && !acl.enabled) {
        problems.add(
            key("dnsDefaultToken"),
            defaultToken,
            `has nothing to do with ${key("aclEnabled")} false (every DNS query is answered already); remove it.`,
        );
    }
    if (forwarder !== "none" && acl.enabled && acl.defaultPolicy === "deny" && !defaultToken) {
        problems.add(
            key("dnsForwarder"),
            forwarder,
            `would forward to agents that answer no DNS query: under aclDefaultPolicy deny an agent answers DNS only with a default token. Set ${key("dnsDefaultToken")} to true (token-less HTTP requests to the clients then read nodes and services; see docs/dns.md) or set dnsForwarder to none.`,
        );
    }
    return { defaultToken, forwarder };
}
