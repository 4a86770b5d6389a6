/**
 * Compiles a pipeline's processor chain once, when the configuration loads: each `processors:`
 * entry names one kind, its settings pass the kind's schema, and its CEL compiles. Problems are
 * collected, never thrown, so that `check` reports every mistake of a chain at once.
 *
 * @module
 */
import type { z } from "zod";
import {
  compileExpression,
  compileFilter,
  type Expression,
  type ExpressionOptions,
  type Filter,
  FilterCompileError,
} from "../filter/filter.ts";
import { suggest } from "../config/suggest.ts";
import type { ProcessorRegistry } from "./mod.ts";
import type {
  CompileContext,
  ConnectorCapabilities,
  ProcessorFactory,
  SettingsPath,
} from "./types.ts";

/** Declared connectors by name; undefined for one whose type is unknown (reported elsewhere). */
export type DeclaredConnectors = ReadonlyMap<string, ConnectorCapabilities | undefined>;

/** A key path from the pipeline declaration, e.g. `["processors", 1, "map", "kw"]`. */
export type ChainPath = readonly (string | number)[];

/** A problem found in a chain, located relative to its pipeline. */
export type ChainProblem =
  | {
    readonly path: ChainPath;
    readonly message: string;
    /** Offset into the string value at `path` (a CEL expression), when known. */
    readonly offset?: number | undefined;
    /** That string value, so the offset can be mapped to a line and column. */
    readonly value?: string | undefined;
    /** True when `path` names a key that should be pointed at rather than its value. */
    readonly key?: boolean;
  }
  | {
    readonly path: ChainPath;
    /** Schema issues under `path`, formatted by the config loader like every other. */
    readonly issues: readonly z.core.$ZodIssue[];
    readonly schema: z.ZodType;
  };

/** One compiled processor of a pipeline. */
export interface ProcessorDecl {
  /** `0:map`; `filter` for a pipeline's top-level filter. */
  readonly label: string;
  /** How it is named in dead-letter reasons: `processors[0] map`, or `filter`. */
  readonly where: string;
  readonly kind: string;
  readonly factory: ProcessorFactory;
}

/** What {@link compileChain} found. */
export interface CompiledChain {
  readonly processors: ProcessorDecl[];
  readonly problems: ChainProblem[];
}

/**
 * Compiles the top-level `filter` (when set) and the `processors` list of one pipeline.
 *
 * @param registry The processor kinds.
 * @param filter The pipeline's `filter:`, if any.
 * @param list The pipeline's `processors:` value as parsed from YAML (validated here).
 * @param options How `_tokens` splits the source's addresses.
 * @param connectors The declared connectors, for processors that name one (a request).
 */
export function compileChain(
  registry: ProcessorRegistry,
  filter: string | undefined,
  list: unknown,
  options: ExpressionOptions,
  connectors: DeclaredConnectors = new Map(),
): CompiledChain {
  const processors: ProcessorDecl[] = [];
  const problems: ChainProblem[] = [];
  if (filter !== undefined) {
    const f = registry.get("filter")!;
    const factory = f.compile(filter, context(["filter"], problems, options, connectors));
    if (factory) processors.push({ label: "filter", where: "filter", kind: "filter", factory });
  }
  if (list === undefined) return { processors, problems };
  if (!Array.isArray(list)) {
    problems.push({
      path: ["processors"],
      message: "expected a list of processors, e.g. `- filter: temperature > 30`",
    });
    return { processors, problems };
  }
  list.forEach((entry, index) => {
    const at = ["processors", index];
    const keys = entry !== null && typeof entry === "object" && !Array.isArray(entry)
      ? Object.keys(entry)
      : [];
    if (keys.length !== 1) {
      problems.push({
        path: at,
        message: `expected a map with exactly one processor kind (${
          registry.names().join(", ")
        }), e.g. \`- sample: 10\``,
      });
      return;
    }
    const name = keys[0]!;
    const kind = registry.get(name);
    if (!kind) {
      const hint = suggest(name, registry.names());
      problems.push({
        path: [...at, name],
        key: true,
        message: `unknown processor "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}: ` +
          `expected one of ${registry.names().join(", ")}`,
      });
      return;
    }
    const raw = (entry as Record<string, unknown>)[name];
    const parsed = kind.schema.safeParse(raw, { reportInput: true });
    if (!parsed.success) {
      problems.push({ path: [...at, name], issues: parsed.error.issues, schema: kind.schema });
      return;
    }
    const factory = kind.compile(
      parsed.data,
      context([...at, name], problems, options, connectors),
    );
    if (factory) {
      processors.push({
        label: `${index}:${name}`,
        where: `processors[${index}] ${name}`,
        kind: name,
        factory,
      });
    }
  });
  return { processors, problems };
}

function context(
  base: ChainPath,
  problems: ChainProblem[],
  options: ExpressionOptions,
  connectors: DeclaredConnectors,
): CompileContext {
  const compile = <T>(
    path: SettingsPath,
    text: string,
    what: string,
    fn: () => T,
  ): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof FilterCompileError)) throw e;
      problems.push({
        path: [...base, ...path],
        message: `invalid ${what}: ${e.message}`,
        offset: e.offset,
        value: text,
      });
      return undefined;
    }
  };
  return {
    expression: (path, text): Expression | undefined =>
      compile(path, text, "expression", () => compileExpression(text, options)),
    filter: (path, text): Filter | undefined =>
      compile(path, text, "filter", () => compileFilter(text, options)),
    problem: (path, message) => problems.push({ path: [...base, ...path], message }),
    problemAt: (path, message, offset, value) =>
      problems.push({ path: [...base, ...path], message, offset, value }),
    connector: (path, name) => {
      if (!connectors.has(name)) {
        const known = [...connectors.keys()].sort();
        problems.push({
          path: [...base, ...path],
          message: `unknown connector "${name}": ${
            known.length ? `declared are ${known.join(", ")}` : "no connectors are declared"
          }`,
        });
        return undefined;
      }
      return connectors.get(name);
    },
  };
}
