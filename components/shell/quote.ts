// Putting values into POSIX sh scripts as data: every value is single-quoted, and a script's
// parameters are read-only assignments at its top, so no value is ever spliced into a body.

/** Single-quotes a value for POSIX sh. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'"'"'`)}'`;
}

/** A script's parameters: the name (upper case) and its value. */
export type ScriptParams = Readonly<Record<string, string | number>>;

/**
 * `readonly NAME='value'` lines, one per parameter, in the given order. Read-only, so a body that
 * assigns one of them aborts instead of silently using another value. Names must be upper-case
 * identifiers; values cannot hold a line break or NUL (the scripts are one `sh -c` argument, and a
 * script's lines are filtered as lines).
 */
export function scriptHeader(params: ScriptParams): string {
    return Object.entries(params)
        .map(([name, value]) => {
            if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`bad script parameter name ${name}`);
            const text = String(value);
            if (/[\r\n\0]/.test(text)) throw new Error(`script parameter ${name} cannot contain a line break`);
            return `readonly ${name}=${shellQuote(text)}\n`;
        })
        .join("");
}
