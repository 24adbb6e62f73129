// The program's parts: config, security material, agents, and the two places agents run.

export * from "./cluster";
export * from "./config";
export * from "./security";
export * from "./agent";
export * from "./kubernetes";
export * from "./vm";
export * from "./metrics";
