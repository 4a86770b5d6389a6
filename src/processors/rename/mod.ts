/**
 * `- rename: {old: new}`: moves fields (dotted paths); a missing field is ignored.
 *
 * @module
 */
import * as z from "zod";
import { defineProcessorKind } from "../types.ts";
import { fieldPath } from "../_fields.ts";
import { deletePath, getPath, isObject, setPath, splitPath } from "../_path.ts";

/** Registration of `rename`. */
export const renameKind = defineProcessorKind({
  kind: "rename",
  summary: "Rename fields: old name -> new name (dotted paths); missing fields are ignored",
  schema: z.record(
    z.string().regex(/^[^.\s]+(?:\.[^.\s]+)*$/, "expected a field name or dotted path"),
    fieldPath("The new name"),
  ).refine((m) => Object.keys(m).length > 0, "expected at least one field to rename")
    .describe("Fields to rename: old name -> new name").meta({
      examples: [{ temp: "temperature" }],
    }),
  compile(config: Record<string, string>) {
    const moves = Object.entries(config).map(([from, to]) => ({
      from: splitPath(from),
      to: splitPath(to),
    }));
    return {
      create: () => ({
        process(event) {
          if (!isObject(event)) return event;
          let out = event;
          for (const { from, to } of moves) {
            const value = getPath(out, from);
            if (value === undefined) continue;
            out = setPath(deletePath(out, from), to, value);
          }
          return out;
        },
      }),
    };
  },
});
