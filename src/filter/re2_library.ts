/**
 * re2js, imported by `re2.ts` for the first expression that calls `matches` rather than at
 * start-up: building its Unicode tables costs a gateway that does not use `matches` about 1 MiB.
 * A local module imported with a string literal, so that the bundle and an executable embed it.
 *
 * @module
 */
export { RE2JS } from "re2js";
