// Metrics: the Prometheus scrape config that finds and scrapes every agent, and the YAML it is
// rendered to. The token and its policy are in ../security (metrics-policy.ts).

export * from "./yaml";
export * from "./scrape-config";
