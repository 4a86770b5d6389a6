/**
 * `- map: {name: CEL}`: sets fields from CEL expressions. Every expression sees the event as it
 * was before this map, so the fields of one map do not see each other; a dotted name sets a
 * nested field and creates the objects on its way.
 *
 * @module
 */
import * as z from "zod";
import type { Expression } from "../../filter/filter.ts";
import { defineProcessorKind } from "../types.ts";
import { cel } from "../_fields.ts";
import { defineField, isObject, type JsonObject, setPath, splitPath } from "../_path.ts";
import { jsonValue } from "../_values.ts";

const schema = z.record(
  z.string().regex(/^[^.\s]+(?:\.[^.\s]+)*$/, "expected a field name or dotted path"),
  cel("CEL expression giving the field's value"),
).refine((m) => Object.keys(m).length > 0, "expected at least one field to set")
  .describe("Fields to set: name (or dotted path) -> CEL expression over the event")
  .meta({ examples: [{ kw: "kwh * 4.0", site: "_tokens[1]", "reading.unit": '"kWh"' }] });

/** Registration of `map`. */
export const mapKind = defineProcessorKind({
  kind: "map",
  summary: "Set fields from CEL expressions (dotted names set nested fields)",
  schema,
  compile(config: Record<string, string>, ctx) {
    const fields: { path: readonly string[]; expr: Expression }[] = [];
    let ok = true;
    for (const [name, text] of Object.entries(config)) {
      const expr = ctx.expression([name], text);
      if (expr) fields.push({ path: splitPath(name), expr });
      else ok = false;
    }
    if (!ok) return undefined;
    return {
      create: () => ({
        process(event, meta) {
          if (!isObject(event)) throw new TypeError("the event is not a JSON object");
          // Every value is computed from the event as it came, before any field is set.
          const values = fields.map((f) => jsonValue(f.expr.evaluate(event, meta)));
          // One copy of the event; nested paths copy only the objects along their way.
          let out: JsonObject = { ...event };
          for (let i = 0; i < fields.length; i++) {
            const path = fields[i]!.path;
            if (path.length === 1) defineField(out, path[0]!, values[i]);
            else out = setPath(out, path, values[i]);
          }
          return out;
        },
      }),
    };
  },
});
