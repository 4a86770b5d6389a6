/**
 * Renders `docs/reference.md`, the configuration reference, from the zod schemas: each key's
 * type, default, meaning (`.describe()`) and examples (`.meta({ examples })`). The reference is a
 * list of (title, schema) sections, so a new connector type or processor kind adds its keys by
 * being registered, and a test (`tests/docs_test.ts`) fails when the committed file differs.
 *
 * @module
 */
import { z } from "zod";
import { toJsonSchema } from "../src/cli/schema.ts";
import { defOf, inputForm, keyFacts, UNIT_PATTERNS } from "../src/cli/zod_walk.ts";
import { fileSchema, pipelineSchema } from "../src/config/schema.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { builtinProcessors, type ProcessorRegistry } from "../src/processors/mod.ts";
import type { Registry } from "../src/registry.ts";

/** One section of the reference: a heading, a paragraph, and a table of the schema's keys. */
export interface ReferenceSection {
  /** Heading (markdown allowed). */
  title: string;
  /** Where these keys are written, and anything a table cannot say. */
  intro: string;
  /** The schema whose keys are listed. */
  schema: z.ZodType;
  /** Prefix of every key in the table, e.g. `source.` for a source's settings. */
  prefix?: string;
  /** Rows put before the schema's own, e.g. a connector's `type`. */
  extraRows?: Row[];
  /**
   * Types to show instead of the schema's, by key: for values another section describes (the
   * schema holds them as `unknown` and checks them by connector type or processor kind).
   */
  types?: Record<string, string>;
}

/** One key of the table. */
export interface Row {
  key: string;
  type: string;
  default: string;
  meaning: string;
}

/**
 * The sections of the reference: the file, health, a pipeline, then per connector type its
 * declaration, source and sink.
 *
 * A processor kind is documented as the one key of its `processors:` entry, so a kind whose
 * settings are a map lists their keys beneath it.
 *
 * @param registry The connector types to document.
 * @param processors The processor kinds to document.
 * @returns The sections in reading order.
 */
export function referenceSections(
  registry: Registry,
  processors: ProcessorRegistry = builtinProcessors(),
): ReferenceSection[] {
  const sections: ReferenceSection[] = [
    {
      title: "Top level and `health`",
      intro: "Keys at the top level of a file. `connectors` and `pipelines` map names (letters, " +
        "digits, `-` and `_`, starting with a letter or digit) to declarations; they merge across " +
        "files, and a name declared twice is an error naming both places.",
      schema: fileSchema,
      types: {
        connectors: "map of name → connector (see the connector types below)",
        pipelines: "map of name → pipeline (see Pipeline)",
      },
    },
    {
      title: "Pipeline",
      intro: "A pipeline declaration: `pipelines.<name>`. A source, each sink and the dead " +
        "letter name a connector; the settings beside `connector` are the connector type's " +
        "(see the sections of each type below). `dead_letter` takes a sink's keys; its address " +
        "must be literal (no template).",
      schema: pipelineSchema,
      types: { processors: "list of processors (see the processor kinds below)" },
    },
  ];
  for (const kind of processors.kinds()) {
    sections.push({
      title: `Processor \`${kind.kind}\``,
      intro: `${kind.summary}. An entry of a pipeline's \`processors:\` list: a map with the ` +
        `one key \`${kind.kind}\`.`,
      schema: z.strictObject({ [kind.kind]: kind.schema }),
      prefix: "processors[].",
    });
  }
  for (const name of registry.names()) {
    const type = registry.get(name)!;
    sections.push(
      {
        title: `Connector \`type: ${name}\``,
        intro: `${type.summary}. A connector declaration: \`connectors.<name>\` with ` +
          `\`type: ${name}\`. Every pipeline that names the connector shares one client.`,
        schema: type.connectorSchema,
        extraRows: [{
          key: "type",
          type: `\`${name}\``,
          default: "required",
          meaning: "The connector type",
        }],
      },
      {
        title: `Source on a \`${name}\` connector`,
        intro: `Keys of a pipeline's \`source:\` (beside \`connector\`) when it names a ` +
          `\`${name}\` connector.`,
        schema: type.sourceSchema,
        prefix: "source.",
      },
      {
        title: `Sink on a \`${name}\` connector`,
        intro: `Keys of an entry of a pipeline's \`sinks:\`, and of \`dead_letter:\` (beside ` +
          `\`connector\` and \`buffer\`), when it names a \`${name}\` connector.`,
        schema: type.sinkSchema,
        prefix: "sinks[].",
      },
    );
  }
  return sections;
}

/** Writes a value as it would be written in YAML flow style, for a table cell. */
export function flow(value: unknown): string {
  if (typeof value === "string") {
    const plain = /^[\w./:${}<>*@+-][\w ./:${}<>*@+-]*$/.test(value) &&
      !/^(true|false|null|yes|no|on|off|~)$/i.test(value) && !Number.isFinite(Number(value));
    return plain ? value : JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(flow).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    return `{${Object.entries(value).map(([k, v]) => `${k}: ${flow(v)}`).join(", ")}}`;
  }
  return String(value);
}

const UNIT_BY_PATTERN = new Map(
  Object.entries(UNIT_PATTERNS).map(([unit, pattern]) => [`(?:${pattern})|\\$\\{`, unit]),
);

/** Names the type of a JSON Schema node the way the reference tables do. */
export function typeText(json: Record<string, unknown>): string {
  if (Array.isArray(json.anyOf) || Array.isArray(json.oneOf)) {
    const branches = (json.anyOf ?? json.oneOf) as Record<string, unknown>[];
    return [...new Set(branches.map(typeText))].join(" or ");
  }
  if ("const" in json) return `\`${flow(json.const)}\``;
  if (Array.isArray(json.enum)) return json.enum.map((v) => `\`${flow(v)}\``).join(", ");
  const unit = typeof json.pattern === "string" ? UNIT_BY_PATTERN.get(json.pattern) : undefined;
  if (unit) return unit;
  switch (json.type) {
    case "array":
      return `list of ${typeText((json.items ?? {}) as Record<string, unknown>)}`;
    case "object": {
      if (json.properties) return "map";
      const values = json.additionalProperties;
      return typeof values === "object" && values !== null && Object.keys(values).length > 0
        ? `map of name → ${typeText(values as Record<string, unknown>)}`
        : "map of names";
    }
    case "integer":
    case "number": {
      const min = json.minimum as number | undefined;
      const max = json.maximum as number | undefined;
      const name = String(json.type);
      if (min !== undefined && max !== undefined) return `${name} ${min}–${max}`;
      if (min !== undefined) return `${name} ≥ ${min}`;
      if (max !== undefined) return `${name} ≤ ${max}`;
      return name;
    }
    case undefined:
      return "any";
    default:
      return String(json.type);
  }
}

/** The object branches of a union node (e.g. `jetstream: true | {timeout, ...}`). */
function objectBranches(def: Record<string, unknown>): unknown[] {
  if (def.type !== "union") return [];
  return (def.options as unknown[]).filter((o) => defOf(keyFacts(o).inner)?.type === "object");
}

/** The rows of every key of `schema`, depth first, nested keys after their parent. */
export function rows(schema: z.ZodType, prefix = ""): Row[] {
  const out: Row[] = [];
  const walkObject = (node: unknown, at: string) => {
    const shape = defOf(node)?.shape as Record<string, unknown> | undefined;
    for (const [name, child] of Object.entries(shape ?? {})) {
      const key = `${at}${name}`;
      const facts = keyFacts(child);
      const innerDef = defOf(facts.inner);
      // A list's description often sits on its element (`z.array(x.describe(...))`).
      let meaning = facts.description ??
        (innerDef?.type === "array" ? keyFacts(innerDef.element).description : undefined) ?? "";
      if (facts.examples?.length) {
        const shown = facts.examples.map((e) => `\`${flow(e)}\``).join(", ");
        meaning += `${meaning ? ". " : ""}Example${facts.examples.length > 1 ? "s" : ""}: ${shown}`;
      }
      let shown: string;
      if (facts.hasDefault) {
        const written = inputForm(child, facts.defaultValue);
        shown = written === undefined ? "computed" : `\`${flow(written)}\``;
      } else shown = facts.optional ? "none" : "required";
      out.push({ key, type: typeText(toJsonSchema(child as z.ZodType)), default: shown, meaning });
      const inner = defOf(facts.inner);
      if (inner?.type === "object") walkObject(facts.inner, `${key}.`);
      else if (inner?.type === "array") {
        const element = keyFacts(inner.element).inner;
        if (defOf(element)?.type === "object") walkObject(element, `${key}[].`);
      } else if (inner) {
        for (const branch of objectBranches(inner)) walkObject(keyFacts(branch).inner, `${key}.`);
      }
    }
  };
  walkObject(keyFacts(schema).inner, prefix);
  return out;
}

/**
 * A table cell: `|` escaped everywhere (GFM tables need it inside code too); `<` and `*` escaped
 * outside code spans, so `sluice.health.<instance>` is no HTML tag and `'*'` no emphasis.
 */
function cell(text: string): string {
  return text.replaceAll("\n", " ").split("`").map((part, i) =>
    i % 2 === 1 ? part : part.replaceAll("<", "&lt;").replaceAll("*", "\\*")
  ).join("`").replaceAll("|", "\\|");
}

function table(list: Row[]): string {
  const lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"];
  for (const r of list) {
    lines.push(`| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.meaning)} |`);
  }
  return lines.join("\n");
}

const HEADER = `# Configuration reference

<!-- Generated by \`deno task docs\` from the zod schemas in src/: do not edit by hand. Change the
schema's .describe() or .meta() and run \`deno task docs\`; tests/docs_test.ts fails while this file
differs from what the schemas generate. -->

Every key Sluice accepts, generated from the schemas that validate configuration, so it cannot
fall behind the code. For what the keys do together, see the [README](../README.md) and the guides
in this directory. Editors can check and complete configuration with the JSON Schema
[\`sluice.schema.json\`](sluice.schema.json) (printed by \`sluice schema\`).

- Files: \`sluice run\` and \`sluice check\` read YAML files and directories (every \`*.yaml\` and
  \`*.yml\`, in name order, not recursive). Unknown keys are errors.
- Any string value may use \`\${VAR}\` (an error when unset) or \`\${VAR:-default}\` (also used
  when the variable is empty); \`$$\` is a literal \`$\`.
- **duration**: a number with a unit, \`250ms\`, \`1.5s\`, \`5m\`, \`1h\`. **size**: \`100B\`,
  \`512KiB\`, \`64MiB\`, \`1GiB\` (binary) or \`10KB\`, \`1MB\`, \`1GB\` (decimal).
- Default "none" means the key is optional and has no default; "computed" that the default is
  worked out at start (the description says how).
`;

/**
 * The whole reference as markdown.
 *
 * @param registry The connector types to document; the built-in ones by default.
 * @returns The text of `docs/reference.md`.
 */
export function renderReference(
  registry: Registry = builtinRegistry(),
  processors: ProcessorRegistry = builtinProcessors(),
): string {
  const parts = [HEADER];
  const sections = referenceSections(registry, processors);
  parts.push(
    "Sections: " + sections.map((s) => `[${s.title}](#${anchor(s.title)})`).join(" · ") + "\n",
  );
  for (const s of sections) {
    parts.push(
      `## ${s.title}\n\n${s.intro}\n\n${
        table([
          ...(s.extraRows ?? []),
          ...rows(s.schema, s.prefix).map((r) => ({ ...r, type: s.types?.[r.key] ?? r.type })),
        ])
      }\n`,
    );
  }
  return parts.join("\n");
}

/** GitHub's heading anchor: lower case, punctuation removed, spaces to dashes. */
function anchor(title: string): string {
  return title.toLowerCase().replace(/[^\w\- ]/g, "").replaceAll(" ", "-");
}
