/**
 * Checks a pipeline's source, sink or dead letter: the connector it names, and its settings with
 * that connector type's schema. When the connector or its type is unknown, the settings are still
 * checked as far as the registered types allow, so one load reports every mistake of an endpoint.
 *
 * @module
 */
import type { ConfigError } from "../errors.ts";
import type { ProcessorRegistry } from "../processors/mod.ts";
import type { AnyConnectorType, Registry } from "../registry.ts";
import type { BufferDecl, EndpointDecl } from "./config.ts";
import { issueErrors } from "./issues.ts";
import { unknownConnector } from "./connector_ref.ts";
import { located } from "./located.ts";
import { guessType, keysNoTypeAccepts } from "./unknown_type.ts";
import type { KeyPath, YamlFile } from "./yaml_file.ts";

/** What an endpoint is for: a source, a sink, or a dead letter (a sink with more checks). */
export type EndpointKind = "source" | "sink" | "dead_letter";

/** An endpoint that passed the pipeline schema: a connector name and other keys. */
export type Endpoint = { connector: string; [k: string]: unknown };

/** What endpoint checks need to know about the whole config. */
export interface EndpointContext {
  /** Declared connectors by name, with their type (undefined when unknown or missing). */
  declared: ReadonlyMap<string, AnyConnectorType | undefined>;
  registry: Registry;
  /** The processor kinds a pipeline's chain may name. */
  processors: ProcessorRegistry;
}

/**
 * Validates one endpoint at `at` in `file`.
 *
 * @returns Its declaration, or undefined when it has errors (pushed to `errors`).
 */
export function checkEndpoint(
  file: YamlFile,
  at: KeyPath,
  value: Endpoint,
  kind: EndpointKind,
  ctx: EndpointContext,
  errors: ConfigError[],
): EndpointDecl | undefined {
  // `buffer` and `when` are the engine's, not the connector type's; a source has neither (its
  // schema says so). The pipeline check compiles `when`.
  const { connector, buffer, when: _when, ...sinkRest } = value;
  const rest = kind !== "source" || buffer === undefined ? sinkRest : { ...sinkRest, buffer };
  const declared = ctx.declared.has(connector);
  if (!declared) {
    errors.push(located(file, [...at, "connector"], unknownConnector(connector, ctx.declared)));
  }
  const type = ctx.declared.get(connector);
  if (!type) {
    // The connector is unknown, or its type is (reported at the connector): check what can be.
    checkUntyped(file, at, rest, kind, ctx.registry.types(), errors);
    return undefined;
  }
  const settings = validate(file, at, rest, kind, type, errors);
  if (settings === undefined) return undefined;
  const named = rest[type.addressKey];
  const address = typeof named === "string" ? named : undefined;
  return kind !== "source" && buffer !== undefined
    ? { connector, address, settings: settings.value, buffer: buffer as BufferDecl }
    : { connector, address, settings: settings.value };
}

function schemaOf(type: AnyConnectorType, kind: EndpointKind) {
  return kind === "source" ? type.sourceSchema : type.sinkSchema;
}

/** Validates settings with `type`'s schema; a dead letter also with its `deadLetterProblem`. */
function validate(
  file: YamlFile,
  at: KeyPath,
  rest: Record<string, unknown>,
  kind: EndpointKind,
  type: AnyConnectorType,
  errors: ConfigError[],
): { value: unknown } | undefined {
  const schema = schemaOf(type, kind);
  const settings = schema.safeParse(rest, { reportInput: true });
  if (!settings.success) {
    errors.push(...issueErrors(file, at, settings.error.issues, schema));
    return undefined;
  }
  const problem = kind === "dead_letter" ? type.deadLetterProblem?.(settings.data) : undefined;
  if (problem) {
    errors.push(located(file, [...at, problem.key], problem.message));
    return undefined;
  }
  return { value: settings.data };
}

/**
 * An endpoint whose connector type is unknown: validated fully by the one registered type its
 * address key points to, else only its keys that no registered type accepts are reported.
 */
function checkUntyped(
  file: YamlFile,
  at: KeyPath,
  rest: Record<string, unknown>,
  kind: EndpointKind,
  types: readonly AnyConnectorType[],
  errors: ConfigError[],
): void {
  const guess = guessType(rest, types);
  if (guess) validate(file, at, rest, kind, guess, errors);
  else keysNoTypeAccepts(file, at, rest, types, (t) => schemaOf(t, kind), errors);
}
