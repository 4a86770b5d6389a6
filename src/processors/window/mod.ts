/**
 * `- window: {key, size, every, aggregates, max_keys}`: aggregates events per key over
 * wall-clock windows. Windows are aligned to multiples of `size` since the epoch (tumbling), or
 * with `every` start at each multiple of `every` and last `size` (hopping; `size` must be a whole
 * multiple of `every`, at most 1,000 times it). An event counts in the windows open when it
 * arrives (by the wall clock, not a time inside the event).
 *
 * When a window ends, one event per key that had events in it is emitted by a timer, whether or
 * not more events arrive: `{"key": <key value or null>, "window_start": <epoch ms>,
 * "window_end": <epoch ms>, ...aggregates}`, with the subject and headers of the last event it
 * absorbed. Absorbed events leave the chain (a JetStream source acknowledges them). A graceful
 * stop emits each key's open window (the one that would end next) with `"partial": true`; a
 * reload that keeps the pipeline keeps the open windows. A `sum`, `avg`, `min` or `max` over a
 * value that is not a number is an evaluation error: the event goes to the dead letter.
 *
 * @module
 */
import { formatDuration } from "../../config/units.ts";
import type { Expression } from "../../filter/filter.ts";
import { defineProcessorKind } from "../types.ts";
import { mayBeNumeric } from "../_numeric.ts";
import { splitPath } from "../_path.ts";
import { type Op, RESERVED_FIELDS, type WindowConfig, windowSchema } from "./schema.ts";
import { type Aggregate, Window } from "./processor.ts";

/** Most hopping windows an event may fall in (`size / every`); each costs a pane of state. */
export const MAX_WINDOWS_PER_EVENT = 1_000;

/** Registration of `window`. */
export const windowKind = defineProcessorKind({
  kind: "window",
  summary: "Aggregate per key over wall-clock windows (tumbling or hopping): count, sum, avg, " +
    "min, max, first, last",
  schema: windowSchema,
  compile(config: WindowConfig, ctx) {
    let ok = true;
    const key = config.key === undefined ? undefined : ctx.expression(["key"], config.key);
    if (config.key !== undefined && !key) ok = false;
    const size = config.size;
    const every = config.every ?? size;
    if (every > size || size % every !== 0) {
      ctx.problem(
        ["every"],
        `size ${formatDuration(size)} is not a whole multiple of every ${formatDuration(every)}: ` +
          "choose an every that divides the size (each event is then in size/every windows)",
      );
      ok = false;
    } else if (size / every > MAX_WINDOWS_PER_EVENT) {
      ctx.problem(
        ["every"],
        `size/every is ${size / every}, more than ${MAX_WINDOWS_PER_EVENT} windows per event: ` +
          "use a larger every",
      );
      ok = false;
    }
    const aggregates: Aggregate[] = [];
    for (const [name, spec] of Object.entries(config.aggregates)) {
      const path = splitPath(name);
      if (RESERVED_FIELDS.includes(path[0]!)) {
        ctx.problem(
          ["aggregates", name],
          `"${path[0]}" is set by the window itself (${RESERVED_FIELDS.join(", ")}): ` +
            "choose another name",
        );
        ok = false;
        continue;
      }
      const [op, text] = Object.entries(spec)[0] as [Op, string | boolean];
      let expr: Expression | undefined;
      if (op !== "count") {
        expr = ctx.expression(["aggregates", name, op], text as string);
        if (!expr) {
          ok = false;
          continue;
        }
        if (op !== "first" && op !== "last" && !mayBeNumeric(expr)) {
          ctx.problem(
            ["aggregates", name, op],
            `${op} needs a number, but this expression gives ${expr.type}: make it numeric, ` +
              "or use first/last",
          );
          ok = false;
          continue;
        }
      }
      aggregates.push({ name, path, op, expr });
    }
    if (!ok) return undefined;
    const settings = { key, sizeMs: size, everyMs: every, aggregates, maxKeys: config.max_keys };
    return { create: (resources) => new Window(settings, resources) };
  },
});
