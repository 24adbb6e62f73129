// What a Consul agent is, whatever runs it: its config, its names, how its address is written.

export * from "./config";
export * from "./names";
export * from "./address";
export * from "./self-service";
