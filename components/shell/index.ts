export { scriptHeader, shellQuote } from "./quote";
export type { ScriptParams } from "./quote";
