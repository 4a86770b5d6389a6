/**
 * `- drop: [field, nested.field]`: removes fields; missing ones are ignored, and an event that
 * had none of them passes unchanged (its original bytes are forwarded).
 *
 * @module
 */
import * as z from "zod";
import { defineProcessorKind } from "../types.ts";
import { fieldPath } from "../_fields.ts";
import { deletePath, isObject, splitPath } from "../_path.ts";

/** Registration of `drop`. */
export const dropKind = defineProcessorKind({
  kind: "drop",
  summary: "Remove fields (dotted paths); missing ones are ignored",
  schema: z.array(fieldPath("A field to remove")).min(1, "expected at least one field")
    .describe("Fields to remove").meta({ examples: [["debug", "raw.trace"]] }),
  compile(fields: string[]) {
    const paths = fields.map(splitPath);
    return {
      create: () => ({
        process(event) {
          if (!isObject(event)) return event;
          let out = event;
          for (const p of paths) out = deletePath(out, p);
          return out;
        },
      }),
    };
  },
});
