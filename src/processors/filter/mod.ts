/**
 * `- filter: <CEL>`: keeps events for which the expression is true. A pipeline's top-level
 * `filter:` is the same processor, run first.
 *
 * @module
 */
import { defineProcessorKind, DROP } from "../types.ts";
import { cel } from "../_fields.ts";

/** Registration of `filter`. */
export const filterKind = defineProcessorKind({
  kind: "filter",
  summary: "Keep events for which a CEL expression is true; drop the rest",
  schema: cel("CEL bool expression over the event, e.g. `temperature > 30`").meta({
    examples: ['temperature > 30 && site == "oslo"'],
  }),
  compile(expression: string, ctx) {
    const filter = ctx.filter([], expression);
    if (!filter) return undefined;
    return {
      create: () => ({
        process: (event, meta) => filter.matches(event, meta) ? event : DROP,
      }),
    };
  },
});
