// WAN federation (issue 15): one stack per datacenter. A primary exports the secret `federation`
// output; a secondary reads it through a StackReference.

export * from "./material";
export * from "./primary";
export * from "./secondary";
