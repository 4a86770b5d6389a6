/**
 * `- sample: N`: keeps one event in N — the 1st, the N+1st, and so on — exactly, by count.
 *
 * @module
 */
import * as z from "zod";
import { defineProcessorKind, DROP } from "../types.ts";

/** Registration of `sample`. */
export const sampleKind = defineProcessorKind({
  kind: "sample",
  summary: "Keep one event in N (the 1st, the N+1st, ...)",
  schema: z.int().min(1, "expected a whole number of at least 1").describe(
    "N: one event in N is kept",
  ).meta({ examples: [10] }),
  compile(n: number) {
    return {
      create: () => {
        let seen = 0;
        return {
          process(event) {
            const keep = seen === 0;
            seen = seen + 1 === n ? 0 : seen + 1;
            return keep ? event : DROP;
          },
        };
      },
    };
  },
});
