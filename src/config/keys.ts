/**
 * Walks zod schemas to list the keys they accept. The loader uses it for "did you mean" hints and
 * the docs test uses it to prove the README's reference names every key.
 *
 * @module
 */
import type { z } from "zod";

type Def = Record<string, unknown> & { type?: string };

function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } })?._zod?.def;
}

/** Looks through wrappers (optional, default, transforms) to the schema that holds the shape. */
function unwrap(schema: unknown): unknown {
  for (let i = 0; i < 16; i++) {
    const def = defOf(schema);
    if (!def) return schema;
    if (def.type === "optional" || def.type === "default" || def.type === "nullable") {
      schema = def.innerType;
    } else if (def.type === "pipe") schema = def.in;
    else return schema;
  }
  return schema;
}

/** The keys of the object schema at `path` inside `schema` (empty when it is no object). */
export function keysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  let s: unknown = schema;
  for (const step of path) {
    s = unwrap(s);
    const def = defOf(s);
    if (def?.type === "object") s = (def.shape as Record<string, unknown>)[String(step)];
    else if (def?.type === "array") s = def.element;
    else if (def?.type === "record") s = def.valueType;
    else return [];
  }
  const def = defOf(unwrap(s));
  return def?.type === "object" ? Object.keys(def.shape as object) : [];
}

/**
 * Every key path the schema accepts, as operators write them: `reconnect.wait`, and `[]` for
 * list elements (`sinks[].subject`). Records (maps of names) are not descended into.
 */
export function keyPaths(schema: z.ZodType, prefix = ""): string[] {
  const out: string[] = [];
  const walk = (s: unknown, at: string) => {
    const def = defOf(unwrap(s));
    if (def?.type === "object") {
      for (const [key, child] of Object.entries(def.shape as Record<string, unknown>)) {
        const path = at ? `${at}.${key}` : key;
        out.push(path);
        walk(child, path);
      }
    } else if (def?.type === "array") walk(def.element, `${at}[]`);
  };
  walk(schema, prefix);
  return out;
}
