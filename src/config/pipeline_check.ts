/**
 * Checks one pipeline declaration: the pipeline schema, then each part on its own (source, sinks,
 * dead letter, filter), so that one load reports every independent mistake of a pipeline.
 *
 * A new part of a pipeline (e.g. a `processors:` chain) is one more check function of the form
 * `(file, path, raw, errors)` called from {@link checkPipeline} next to {@link checkFilter}.
 *
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import { compileFilter, FilterCompileError } from "../filter/filter.ts";
import type { EndpointDecl, PipelineDecl } from "./config.ts";
import { checkEndpoint, type Endpoint, type EndpointContext } from "./endpoint_check.ts";
import { issueErrors } from "./issues.ts";
import { canonicalJson, isPlainObject, type Origin } from "./located.ts";
import { pipelineSchema } from "./schema.ts";
import { formatPath, type KeyPath, type YamlFile } from "./yaml_file.ts";

/** A pipeline of which only the parts that passed the schema are present. */
interface PartialPipeline {
  source?: Endpoint | undefined;
  filter?: string | undefined;
  sinks?: (Endpoint | undefined)[] | undefined;
  "dead_letter"?: Endpoint | undefined;
}

/** The parts of an invalid pipeline that are valid on their own. */
function partialPipeline(raw: Record<string, unknown>): PartialPipeline {
  const shape = pipelineSchema.shape;
  const part = <T>(schema: z.ZodType<T>, value: unknown): T | undefined => {
    const r = schema.safeParse(value);
    return r.success ? r.data : undefined;
  };
  return {
    source: part(shape.source, raw.source),
    filter: part(shape.filter, raw.filter),
    sinks: Array.isArray(raw.sinks)
      ? raw.sinks.map((s) => part(shape.sinks.element, s))
      : undefined,
    dead_letter: part(shape.dead_letter, raw.dead_letter),
  };
}

/**
 * Validates the declaration `raw` of pipeline `name`.
 *
 * @returns The declaration, or undefined when it has errors (pushed to `errors`).
 */
export function checkPipeline(
  name: string,
  raw: unknown,
  { file, path }: Origin,
  ctx: EndpointContext,
  errors: ConfigError[],
): PipelineDecl | undefined {
  const before = errors.length;
  const parsed = pipelineSchema.safeParse(raw, { reportInput: true });
  let p: PartialPipeline;
  if (parsed.success) p = parsed.data;
  else {
    errors.push(...issueErrors(file, path, parsed.error.issues, pipelineSchema));
    if (!isPlainObject(raw)) return undefined;
    // Keep checking the parts that are sound, so one load reports every independent mistake.
    p = partialPipeline(raw);
  }
  const endpoint = (value: Endpoint, at: KeyPath, kind: "source" | "sink" | "dead_letter") =>
    checkEndpoint(file, at, value, kind, ctx, errors);
  const source = p.source && endpoint(p.source, [...path, "source"], "source");
  const sinks = (p.sinks ?? []).map((s, i) => s && endpoint(s, [...path, "sinks", i], "sink"));
  const deadLetter = p.dead_letter &&
    endpoint(p.dead_letter, [...path, "dead_letter"], "dead_letter");
  checkFilter(file, [...path, "filter"], p.filter, errors);
  // Further parts of a pipeline are checked here, each by one call of the same form, e.g.
  // `checkProcessors(file, [...path, "processors"], raw.processors, errors)`.
  if (errors.length > before || !parsed.success || !source || sinks.some((s) => !s)) {
    return undefined;
  }
  return {
    name,
    source,
    filter: p.filter,
    sinks: sinks as EndpointDecl[],
    deadLetter,
    fingerprint: canonicalJson(raw),
    location: file.locate(path, { key: true }),
  };
}

/** Compiles a pipeline's `filter:`, reporting a CEL error at its position in the expression. */
export function checkFilter(
  file: YamlFile,
  path: KeyPath,
  filter: string | undefined,
  errors: ConfigError[],
): void {
  if (filter === undefined) return;
  try {
    compileFilter(filter);
  } catch (e) {
    if (!(e instanceof FilterCompileError)) throw e;
    const loc = file.locate(path, { offset: e.offset, value: filter });
    errors.push(new ConfigError(`invalid filter: ${e.message}`, formatPath(path), loc));
  }
}
