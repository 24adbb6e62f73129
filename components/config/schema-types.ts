// The shape of one stack config key in the table (./schema.ts and its parts).

export type ConfigKeyType = "string" | "integer" | "boolean" | "array";

export interface ConfigKeySpec {
    readonly type: ConfigKeyType;
    readonly description: string;
    /** Absent means "no default": the key is optional or required depending on the topology. */
    readonly default?: string | number | boolean | readonly string[];
    readonly secret?: boolean;
}
