/**
 * Checks one pipeline declaration: the pipeline schema, then each part on its own (source, sinks,
 * dead letter, processor chain, sink `when`s), so that one load reports every independent mistake of a pipeline.
 *
 * The `filter` and `processors` chain are compiled by the processor kinds' own `compile`.
 *
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import { compileFilter, FilterCompileError } from "../filter/filter.ts";
import type { EndpointDecl, PipelineDecl } from "./config.ts";
import { compileChain, type DeclaredConnectors, type ProcessorDecl } from "../processors/chain.ts";
import type { ProcessorRegistry } from "../processors/mod.ts";
import { checkEndpoint, type Endpoint, type EndpointContext } from "./endpoint_check.ts";
import { issueErrors } from "./issues.ts";
import { canonicalJson, isPlainObject, located, type Origin } from "./located.ts";
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
      ? raw.sinks.map((s) => part(shape.sinks.unwrap().element, s))
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
  const separator = (p.source && ctx.declared.get(p.source.connector)?.tokenSeparator) ?? ".";
  const processors = checkChain(
    file,
    path,
    p.filter,
    raw,
    ctx.processors,
    separator,
    ctx.declared,
    errors,
  );
  checkWhens(file, path, p.sinks ?? [], sinks, separator, errors);
  const reply = isPlainObject(raw) && raw.reply === true;
  checkReply(file, path, raw, reply, source, ctx, errors);
  if (errors.length > before || !parsed.success || !source || sinks.some((s) => !s)) {
    return undefined;
  }
  return {
    name,
    source,
    filter: p.filter,
    processors,
    sinks: sinks as EndpointDecl[],
    deadLetter,
    reply,
    maxEventSize: parsed.data.max_event_size,
    fingerprint: canonicalJson(raw),
    location: file.locate(path, { key: true }),
  };
}

/**
 * Compiles the top-level `filter` and the `processors` chain, reporting each problem at its place:
 * a CEL error at its character in the expression.
 */
function checkChain(
  file: YamlFile,
  path: KeyPath,
  filter: string | undefined,
  raw: unknown,
  registry: ProcessorRegistry,
  separator: string,
  declared: DeclaredConnectors,
  errors: ConfigError[],
): ProcessorDecl[] {
  const list = isPlainObject(raw) ? raw.processors : undefined;
  const chain = compileChain(registry, filter, list, { separator }, declared);
  for (const problem of chain.problems) {
    const at = [...path, ...problem.path];
    if ("issues" in problem) {
      errors.push(...issueErrors(file, at, problem.issues, problem.schema));
      continue;
    }
    const loc = file.locate(
      at,
      problem.offset === undefined
        ? { key: problem.key ?? false }
        : { offset: problem.offset, value: problem.value },
    );
    errors.push(new ConfigError(problem.message, formatPath(at), loc));
  }
  return chain.processors;
}

/**
 * Sinks are required unless the pipeline answers requests (`reply: true`), and then its source
 * must deliver messages that can be answered (the connector type says which).
 */
function checkReply(
  file: YamlFile,
  path: KeyPath,
  raw: unknown,
  reply: boolean,
  source: EndpointDecl | undefined,
  ctx: EndpointContext,
  errors: ConfigError[],
): void {
  if (!isPlainObject(raw)) return;
  if (!reply) {
    if (raw.sinks === undefined) {
      errors.push(located(file, [...path, "sinks"], "missing: expected a list"));
    } else if (Array.isArray(raw.sinks) && raw.sinks.length === 0) {
      errors.push(located(file, [...path, "sinks"], "expected at least one sink"));
    }
    return;
  }
  const type = source && ctx.declared.get(source.connector);
  if (!source || !type) return;
  if (!type.replies) {
    errors.push(
      located(
        file,
        [...path, "reply"],
        `reply: true needs a source that can answer requests; connector type "${type.type}" cannot`,
      ),
    );
  } else {
    const can = type.replies(source.settings);
    if (can !== true) errors.push(located(file, [...path, "reply"], `reply: true: ${can}`));
  }
}

/** Compiles each sink's `when` into its declaration. */
function checkWhens(
  file: YamlFile,
  path: KeyPath,
  raw: readonly (Endpoint | undefined)[],
  sinks: readonly (EndpointDecl | undefined)[],
  separator: string,
  errors: ConfigError[],
): void {
  raw.forEach((s, i) => {
    const when = s?.when;
    if (typeof when !== "string") return;
    const at = [...path, "sinks", i, "when"];
    try {
      const filter = compileFilter(when, { separator });
      const sink = sinks[i];
      if (sink) sink.when = filter;
    } catch (e) {
      if (!(e instanceof FilterCompileError)) throw e;
      const loc = file.locate(at, { offset: e.offset, value: when });
      errors.push(new ConfigError(`invalid when: ${e.message}`, formatPath(at), loc));
    }
  });
}
