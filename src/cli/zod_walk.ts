/**
 * Reads what the config schemas declare about each key (description, default, examples, whether a
 * string is a duration or a size), so that the JSON Schema (`sluice schema`) and the generated
 * reference (`docs/reference.md`) come from the same zod declarations the loader validates with.
 *
 * Zod keeps these facts on wrapper nodes (`optional`, `default`, `pipe`), and defaults in their
 * parsed form (`2000` for `2s`); this module looks through the wrappers and turns defaults back
 * into what an operator writes.
 *
 * @module
 */
import * as z from "zod";
import { formatDuration } from "../config/units.ts";

/** The internal definition of a zod node, as far as this module reads it. */
export type Def = Record<string, unknown> & { type?: string };

/** A string field whose text is parsed into a number: a duration (ms) or a size (bytes). */
export type Unit = "duration" | "size";

/** The definition of a zod node, or undefined for anything else. */
export function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } })?._zod?.def;
}

/** Regular expressions (for JSON Schema `pattern`) of what the unit parsers accept. */
export const UNIT_PATTERNS: Readonly<Record<Unit, string>> = {
  duration: "^\\d+(?:\\.\\d+)?(?:ms|s|m|h)$",
  size: "^\\d+(?:\\.\\d+)?(?:B|KB|MB|GB|KiB|MiB|GiB)$",
};

// A duration parser reads "2s" as 2000 (ms); a size parser reads "2KiB" as 2048 (bytes). Probing
// with both recognises every field built with `duration()`/`size()` of src/config/fields.ts (and
// any other parser of the same syntax) without tagging each one.
const probes = new WeakMap<object, Unit | undefined>();

/**
 * Whether `schema` is a string parsed as a duration or a size.
 *
 * @param schema A zod node (wrappers are not looked through: pass the `pipe` node).
 * @returns The unit, or undefined.
 */
export function unitOf(schema: unknown): Unit | undefined {
  const def = defOf(schema);
  if (def?.type !== "pipe" || defOf(def.in)?.type !== "string") return undefined;
  const key = schema as object;
  if (probes.has(key)) return probes.get(key);
  const parse = (text: string) => (schema as z.ZodType).safeParse(text);
  const d = parse("2s");
  const s = parse("2KiB");
  const unit = d.success && d.data === 2000
    ? "duration"
    : s.success && s.data === 2048
    ? "size"
    : undefined;
  probes.set(key, unit);
  return unit;
}

/** Formats bytes in the largest binary unit that divides them exactly: `64MiB`, `1500B`. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [["GiB", 1 << 30], ["MiB", 1 << 20], ["KiB", 1 << 10]] as const) {
    if (bytes > 0 && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

/** The wrapper kinds that only change presence or parsing, not the shape, of a value. */
const WRAPPERS = new Set(["optional", "default", "prefault", "nullable", "readonly", "catch"]);

/** What a key's chain of wrappers says about it. */
export interface KeyFacts {
  /** The node that holds the shape: an object, a union, a string... (a `pipe` stays a pipe). */
  inner: unknown;
  /** True when the key may be left out (optional, or defaulted). */
  optional: boolean;
  /** The default in its parsed form; `hasDefault` tells an undefined default from none. */
  defaultValue: unknown;
  hasDefault: boolean;
  /** The first description on the way in (the outermost, most specific one). */
  description: string | undefined;
  /** Examples from `.meta({ examples: [...] })`. */
  examples: unknown[] | undefined;
  /** Metadata `default` given by hand, for defaults a transform makes unreadable. */
  metaDefault: unknown;
}

/** Reads the metadata of one node from zod's global registry. */
export function metaOf(schema: unknown): Record<string, unknown> | undefined {
  return z.globalRegistry.get(schema as z.ZodType) as Record<string, unknown> | undefined;
}

/**
 * Looks through optional/default wrappers (and the input side of a `pipe` that is no unit) to the
 * node that holds a key's shape, collecting what the wrappers say.
 *
 * @param schema The zod node of a key.
 * @returns What the wrappers declare, and the inner node.
 */
export function keyFacts(schema: unknown): KeyFacts {
  const facts: KeyFacts = {
    inner: schema,
    optional: false,
    defaultValue: undefined,
    hasDefault: false,
    description: undefined,
    examples: undefined,
    metaDefault: undefined,
  };
  let s = schema;
  for (let i = 0; i < 32; i++) {
    const meta = metaOf(s);
    facts.description ??= typeof meta?.description === "string" ? meta.description : undefined;
    if (facts.examples === undefined && Array.isArray(meta?.examples)) {
      facts.examples = meta.examples;
    }
    if (facts.metaDefault === undefined && meta && "default" in meta) {
      facts.metaDefault = meta.default;
    }
    const def = defOf(s);
    if (!def) break;
    if (def.type === "default" || def.type === "prefault") {
      if (!facts.hasDefault) {
        facts.hasDefault = true;
        facts.defaultValue = def.defaultValue;
      }
      facts.optional = true;
    } else if (def.type === "optional") facts.optional = true;
    if (def.type !== undefined && WRAPPERS.has(def.type)) s = def.innerType;
    else if (
      def.type === "pipe" && unitOf(s) === undefined && defOf(def.out)?.type === "transform"
    ) {
      s = def.in;
    } else {
      // A unit's description sits on the string inside it (`z.string().describe(...)`).
      if (def.type === "pipe") facts.description ??= metaOf(def.in)?.description as string;
      break;
    }
  }
  facts.inner = s;
  return facts;
}

/**
 * Turns a default from its parsed form back into what an operator writes: milliseconds into a
 * duration, bytes into a size, objects key by key.
 *
 * @param schema The zod node the value belongs to.
 * @param value The parsed default.
 * @returns The written form, or undefined when the parsed form cannot be written back.
 */
export function inputForm(schema: unknown, value: unknown): unknown {
  const facts = keyFacts(schema);
  if (facts.metaDefault !== undefined && facts.hasDefault) return facts.metaDefault;
  const inner = facts.inner;
  const unit = unitOf(inner);
  if (unit !== undefined) {
    if (typeof value !== "number") return undefined;
    return unit === "duration" ? formatDuration(value) : formatSize(value);
  }
  const written = writtenForm(inner, value);
  // A value the input side refuses was made by a transform (e.g. an address parsed into parts):
  // it cannot be written back.
  if (written === undefined || !(inner as z.ZodType).safeParse(written).success) return undefined;
  return written;
}

function writtenForm(inner: unknown, value: unknown): unknown {
  const def = defOf(inner);
  if (def?.type === "object" && typeof value === "object" && value !== null) {
    const shape = def.shape as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!(k in shape)) return undefined;
      const written = inputForm(shape[k], v);
      if (written === undefined) return undefined;
      out[k] = written;
    }
    return out;
  }
  return value;
}
