/**
 * `sluice schema`: a JSON Schema (draft 2020-12) of a configuration file, built from the same zod
 * schemas the loader validates with, so that editors (e.g. the YAML language server) check and
 * complete configuration as it is typed.
 *
 * The file schema alone cannot say what a connector or a source holds: that depends on the
 * connector type. So each registered type contributes its declaration (one `oneOf` branch chosen
 * by `type`) and its source and sink settings (`anyOf` branches beside `connector`). A source names
 * its connector by name, which JSON Schema cannot follow, so a source is valid when it fits any
 * registered type; `sluice check` still checks it against the type it names.
 *
 * @module
 */
import * as z from "zod";
import { NAME_PATTERN } from "../config/fields.ts";
import { fileSchema, pipelineSchema } from "../config/schema.ts";
import { builtinProcessors, type ProcessorRegistry } from "../processors/mod.ts";
import type { Registry } from "../registry.ts";
import { defOf, inputForm, metaOf, UNIT_PATTERNS, unitOf } from "./zod_walk.ts";

/** A JSON Schema node, as far as the composition below reads and writes it. */
export type JsonSchema = { [key: string]: unknown };

/** The address editors and the shipped examples use for the schema: it is committed there. */
export const SCHEMA_FILE = "docs/sluice.schema.json";

const SAFE_INT = Number.MAX_SAFE_INTEGER;

/** `${VAR}` may stand for any string value, so a pattern also accepts strings that hold one. */
function lenientPattern(pattern: string): string {
  return `(?:${pattern})|\\$\\{`;
}

/**
 * Converts one zod schema to JSON Schema in its input form (what is written in YAML): durations
 * and sizes get a pattern, defaults are written back as an operator writes them, and the bounds
 * zod puts on every integer (the safe integer range) are left out.
 *
 * @param schema A zod schema of config text.
 * @returns The JSON Schema, without `$schema`.
 */
export function toJsonSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io: "input",
    target: "draft-2020-12",
    unrepresentable: "any",
    override: ({ zodSchema, jsonSchema }) => {
      const js = jsonSchema as JsonSchema;
      const def = defOf(zodSchema);
      const unit = unitOf(zodSchema);
      if (unit) js.pattern = lenientPattern(UNIT_PATTERNS[unit]);
      else if (typeof js.pattern === "string" && def?.type === "string") {
        js.pattern = lenientPattern(js.pattern);
      }
      if (js.minimum === -SAFE_INT) delete js.minimum;
      if (js.maximum === SAFE_INT) delete js.maximum;
      const meta = metaOf(zodSchema);
      if (Array.isArray(meta?.examples) && js.examples === undefined) js.examples = meta.examples;
      if (def?.type === "default" || def?.type === "prefault") {
        const written = inputForm(zodSchema, def.defaultValue);
        if (written === undefined) delete js.default;
        else js.default = written;
      }
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/** The properties and required keys of an object schema; anything else is a programming error. */
function objectParts(json: JsonSchema, what: string): {
  properties: Record<string, JsonSchema>;
  required: string[];
} {
  if (json.type !== "object" || typeof json.properties !== "object") {
    throw new TypeError(`${what} must be an object schema to be composed into the JSON Schema`);
  }
  return {
    properties: json.properties as Record<string, JsonSchema>,
    required: (json.required as string[] | undefined) ?? [],
  };
}

/**
 * Joins the connector-independent part of an endpoint (`connector`, `buffer`) with one type's
 * settings into one closed object: unknown keys are errors, as for the loader.
 */
function joinEndpoint(common: JsonSchema, settings: JsonSchema, what: string): JsonSchema {
  // Settings that are one of several shapes (a union of objects): join each shape.
  const branches = (settings.anyOf ?? settings.oneOf) as JsonSchema[] | undefined;
  if (settings.type === undefined && Array.isArray(branches)) {
    const joined: JsonSchema = {
      anyOf: branches.map((b, i) => joinEndpoint(common, b, `${what} (shape ${i + 1})`)),
    };
    if (typeof settings.description === "string") joined.description = settings.description;
    return joined;
  }
  const a = objectParts(common, "endpoint");
  const b = objectParts(settings, what);
  const joined: JsonSchema = {
    type: "object",
    properties: { ...a.properties, ...b.properties },
    required: [...new Set([...a.required, ...b.required])],
    additionalProperties: false,
  };
  if (typeof settings.description === "string") joined.description = settings.description;
  return joined;
}

/**
 * The JSON Schema of one configuration file, for every connector type in `registry` and every
 * processor kind in `processors`.
 *
 * @param registry The registered connector types.
 * @param processors The registered processor kinds.
 * @returns A draft 2020-12 schema with `$defs` per connector type and processor kind.
 */
export function configJsonSchema(
  registry: Registry,
  processors: ProcessorRegistry = builtinProcessors(),
): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  const connectorBranches: JsonSchema[] = [];
  const sourceBranches: JsonSchema[] = [];
  const sinkBranches: JsonSchema[] = [];

  const pipeline = toJsonSchema(pipelineSchema);
  const pipelineParts = objectParts(pipeline, "pipeline");
  const sourceCommon = pipelineParts.properties.source ?? {};
  const sinksJson = pipelineParts.properties.sinks ?? {};
  const sinkCommon = (sinksJson.items ?? {}) as JsonSchema;

  for (const name of registry.names()) {
    const type = registry.get(name)!;
    const connector = toJsonSchema(type.connectorSchema);
    const parts = objectParts(connector, `connector type ${name}`);
    defs[`connector.${name}`] = {
      ...connector,
      description: `A connector of type ${name}: ${type.summary}`,
      properties: {
        type: { const: name, description: "The connector type" },
        ...parts.properties,
      },
      required: ["type", ...parts.required],
      additionalProperties: false,
    };
    connectorBranches.push({ $ref: `#/$defs/connector.${name}` });
    defs[`source.${name}`] = joinEndpoint(
      sourceCommon,
      toJsonSchema(type.sourceSchema),
      `source of ${name}`,
    );
    sourceBranches.push({ $ref: `#/$defs/source.${name}` });
    defs[`sink.${name}`] = joinEndpoint(
      sinkCommon,
      toJsonSchema(type.sinkSchema),
      `sink of ${name}`,
    );
    sinkBranches.push({ $ref: `#/$defs/sink.${name}` });
  }

  // A processor is a map with exactly one key, its kind.
  const processorBranches: JsonSchema[] = [];
  for (const kind of processors.kinds()) {
    defs[`processor.${kind.kind}`] = {
      type: "object",
      description: kind.summary,
      properties: { [kind.kind]: toJsonSchema(kind.schema) },
      required: [kind.kind],
      additionalProperties: false,
    };
    processorBranches.push({ $ref: `#/$defs/processor.${kind.kind}` });
  }

  const describe = (json: JsonSchema | undefined) =>
    typeof json?.description === "string" ? { description: json.description } : {};
  defs.pipeline = {
    ...pipeline,
    properties: {
      ...pipelineParts.properties,
      ...(pipelineParts.properties.processors
        ? {
          processors: {
            ...pipelineParts.properties.processors,
            items: { oneOf: processorBranches },
          },
        }
        : {}),
      source: { ...describe(sourceCommon), anyOf: sourceBranches },
      sinks: { ...sinksJson, items: { ...describe(sinkCommon), anyOf: sinkBranches } },
      dead_letter: {
        ...describe(pipelineParts.properties.dead_letter),
        anyOf: sinkBranches,
      },
    },
    // At least one sink, unless the pipeline answers requests (`reply: true`): the loader's rule.
    if: { not: { properties: { reply: { const: true } }, required: ["reply"] } },
    then: { required: ["sinks"], properties: { sinks: { type: "array", minItems: 1 } } },
  };

  const file = toJsonSchema(fileSchema);
  const fileParts = objectParts(file, "file");
  const names = { pattern: NAME_PATTERN.source };
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "Sluice configuration file",
    description: "Connectors, pipelines and health of Sluice; `sluice schema` prints this schema",
    ...file,
    properties: {
      ...fileParts.properties,
      connectors: {
        ...fileParts.properties.connectors,
        propertyNames: names,
        additionalProperties: { oneOf: connectorBranches },
      },
      pipelines: {
        ...fileParts.properties.pipelines,
        propertyNames: names,
        additionalProperties: { $ref: "#/$defs/pipeline" },
      },
    },
    $defs: defs,
  };
}

/** The JSON Schema as `sluice schema` prints it and `docs/sluice.schema.json` holds it. */
export function configJsonSchemaText(
  registry: Registry,
  processors: ProcessorRegistry = builtinProcessors(),
): string {
  return JSON.stringify(configJsonSchema(registry, processors), null, 2) + "\n";
}
