// Stack config: the schema, one reader per domain, and the typed Settings they produce.

export * from "./types";
export { configSchema, DEFAULT_CONSUL_VERSION } from "./schema";
export type { ConfigKey, ConfigKeySpec } from "./schema";
export { expandHome, isIpAddress } from "./read";
export { parseHost } from "./ssh";
export { MIN_CONSUL_VERSION } from "./common";
export { parseQuantity } from "./kubernetes";
export { parseSettings } from "./parse";
export { KUBERNETES_PROVIDER_SETTINGS } from "./kubernetes-provider";
export { loadSettings } from "./load";
export { DEVELOPMENT_STACKS, isDevelopmentStack } from "./stack-kind";
