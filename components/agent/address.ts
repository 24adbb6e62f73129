// How an agent's address is written with a port: one rule for retry_join entries and URLs.

/** `host:port`, with an IPv6 address in brackets. */
export function hostPort(host: string, port: number): string {
    return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An agent's HTTPS base URL. */
export function httpsUrl(host: string, port: number): string {
    return `https://${hostPort(host, port)}`;
}
