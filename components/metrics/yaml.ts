// A small YAML emitter for the typed objects the program renders (the Prometheus scrape config):
// block mappings and sequences, every string double-quoted as JSON writes it (a valid YAML
// double-quoted scalar, so no value can turn into a number, a boolean or a comment).

/** YAML for plain data: objects, arrays, strings, finite numbers, booleans. Keys keep their order. */
export function renderYaml(value: unknown): string {
    return lines(value, 0).join("\n") + "\n";
}

function scalar(value: unknown): string {
    if (typeof value === "string") return JSON.stringify(value);
    if (typeof value === "boolean") return String(value);
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    throw new Error(`renderYaml: cannot render ${typeof value} ${String(value)}`);
}

/** YAML 1.1 reads these plain words as booleans or null (Prometheus parses with go-yaml). */
const RESERVED = new Set(["y", "n", "yes", "no", "on", "off", "true", "false", "null"]);

/** A key as a plain scalar when it is a plain identifier, quoted otherwise. */
function key(name: string): string {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !RESERVED.has(name.toLowerCase()) ? name : JSON.stringify(name);
}

function isEmpty(value: unknown): boolean {
    return (Array.isArray(value) && value.length === 0) || (isObject(value) && Object.keys(value).length === 0);
}

function isObject(value: unknown): value is Record<string, unknown> {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

function lines(value: unknown, indent: number): string[] {
    const pad = " ".repeat(indent);
    if (Array.isArray(value)) {
        if (value.length === 0) return [`${pad}[]`];
        return value.flatMap((item) => {
            if (!isEmpty(item) && (Array.isArray(item) || isObject(item))) {
                const inner = lines(item, indent + 2);
                return [`${pad}- ${inner[0].slice(indent + 2)}`, ...inner.slice(1)];
            }
            return [`${pad}- ${isEmpty(item) ? (Array.isArray(item) ? "[]" : "{}") : scalar(item)}`];
        });
    }
    if (isObject(value)) {
        const entries = Object.entries(value).filter(([, v]) => v !== undefined);
        if (entries.length === 0) return [`${pad}{}`];
        return entries.flatMap(([name, v]) => {
            const k = key(name);
            if (isEmpty(v)) return [`${pad}${k}: ${Array.isArray(v) ? "[]" : "{}"}`];
            if (Array.isArray(v) || isObject(v)) return [`${pad}${k}:`, ...lines(v, indent + 2)];
            return [`${pad}${k}: ${scalar(v)}`];
        });
    }
    return [`${pad}${scalar(value)}`];
}
