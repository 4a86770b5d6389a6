/**
 * Loads configuration from files and directories: parse YAML keeping positions, interpolate
 * `${VAR}`, merge, validate every component with its schema, and check cross-references. Every
 * problem of a load is collected and thrown together as {@link ConfigErrors}.
 *
 * @module
 */
import type { z } from "zod";
import { ConfigError, ConfigErrors, type Location } from "../errors.ts";
import { compileFilter, FilterCompileError } from "../filter/filter.ts";
import type { AnyConnectorType, Registry } from "../registry.ts";
import type { Config, ConnectorDecl, EndpointDecl, PipelineDecl } from "./config.ts";
import { NAME_PATTERN, NAME_RULE } from "./fields.ts";
import { interpolate } from "./interpolate.ts";
import { fileSchema, pipelineSchema } from "./schema.ts";
import { formatPath, type KeyPath, MAX_FILE_BYTES, YamlFile } from "./yaml_file.ts";

/** Options of {@link loadConfig}. */
export interface LoadOptions {
  /** The connector types that declarations may name. */
  registry: Registry;
  /** Looks up `${VAR}` references. @default Deno.env.get */
  env?: (name: string) => string | undefined;
}

/** A config file's text, for loading without touching the file system. */
export interface ConfigText {
  path: string;
  text: string;
}

/** Most pipelines or connectors one config may declare; far beyond any gateway's needs. */
export const MAX_DECLARATIONS = 10_000;

/**
 * Reads every `*.yaml`/`*.yml` of the given files and directories (directories not recursively,
 * sorted by name) and loads them with {@link loadConfigTexts}.
 *
 * @throws {ConfigErrors} listing every problem found.
 */
export async function loadConfig(paths: readonly string[], options: LoadOptions): Promise<Config> {
  const errors: ConfigError[] = [];
  const texts: ConfigText[] = [];
  for (const path of await expandPaths(paths, errors)) {
    try {
      const info = await Deno.stat(path);
      if (info.size > MAX_FILE_BYTES) {
        errors.push(
          fileError(
            path,
            `file is ${info.size} bytes; config files may be at most ${MAX_FILE_BYTES}`,
          ),
        );
        continue;
      }
      texts.push({ path, text: await Deno.readTextFile(path) });
    } catch (e) {
      errors.push(fileError(path, readProblem(e)));
    }
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return loadConfigTexts(texts, options);
}

async function expandPaths(paths: readonly string[], errors: ConfigError[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      errors.push(fileError(path, readProblem(e)));
      continue;
    }
    if (!info.isDirectory) {
      files.push(path);
      continue;
    }
    const inDir: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) {
        if (entry.isFile && /\.ya?ml$/.test(entry.name)) {
          inDir.push(`${path.replace(/\/+$/, "")}/${entry.name}`);
        }
      }
    } catch (e) {
      errors.push(fileError(path, readProblem(e)));
    }
    files.push(...inDir.sort());
  }
  if (files.length === 0 && errors.length === 0) {
    errors.push(new ConfigError(`no *.yaml or *.yml files in ${paths.join(", ")}`, ""));
  }
  return files;
}

function readProblem(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return `cannot read it: ${(e as Error).message} (grant --allow-read for this path)`;
  }
  return `cannot read it: ${e instanceof Error ? e.message : String(e)}`;
}

function fileError(path: string, message: string): ConfigError {
  return new ConfigError(message, "", { file: path, line: 1, column: 1 });
}

interface Origin {
  file: YamlFile;
  path: KeyPath;
}

/**
 * Loads configuration from file texts: the heart of {@link loadConfig}, free of I/O for tests.
 *
 * @throws {ConfigErrors} listing every problem found.
 */
export function loadConfigTexts(texts: readonly ConfigText[], options: LoadOptions): Config {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const errors: ConfigError[] = [];
  const connectorSrc = new Map<string, { raw: unknown; origin: Origin }>();
  const pipelineSrc = new Map<string, { raw: unknown; origin: Origin }>();

  for (const { path, text } of texts) {
    const { file, errors: syntax } = YamlFile.parse(path, text);
    if (syntax.length > 0) {
      errors.push(...syntax);
      continue;
    }
    if (file.value === undefined || file.value === null) continue; // empty file: nothing declared
    const value = interpolateTree(file, file.value, [], env, errors);
    const top = fileSchema.safeParse(value, { reportInput: true });
    if (!top.success) {
      errors.push(...issueErrors(file, [], top.error.issues, fileSchema));
      continue;
    }
    for (
      const [section, target] of [["connectors", connectorSrc], ["pipelines", pipelineSrc]] as const
    ) {
      for (const [name, raw] of Object.entries(top.data[section] ?? {})) {
        const path = [section, name];
        const previous = target.get(name);
        if (previous) {
          const first = previous.origin.file.locate(previous.origin.path, { key: true });
          errors.push(
            located(
              file,
              path,
              `${section.slice(0, -1)} "${name}" is declared twice; first at ${where(first)}`,
              true,
            ),
          );
          continue;
        }
        if (!NAME_PATTERN.test(name)) {
          errors.push(located(file, path, `invalid name "${name}": use ${NAME_RULE}`, true));
        }
        target.set(name, { raw, origin: { file, path } });
      }
    }
  }
  for (const [label, map] of [["connectors", connectorSrc], ["pipelines", pipelineSrc]] as const) {
    if (map.size > MAX_DECLARATIONS) {
      errors.push(
        new ConfigError(
          `${map.size} ${label} declared; at most ${MAX_DECLARATIONS} are supported`,
          label,
        ),
      );
    }
  }
  if (errors.length > 0) throw new ConfigErrors(sortErrors(errors));

  const connectors = new Map<string, ConnectorDecl>();
  for (const [name, { raw, origin }] of connectorSrc) {
    const decl = checkConnector(name, raw, origin, options.registry, errors);
    if (decl) connectors.set(name, decl);
  }
  // A pipeline's endpoints are checked against their connector's type even when the connector's
  // own settings are invalid, so that one load reports both.
  const connectorTypes = new Map<string, AnyConnectorType | undefined>();
  for (const [name, { raw }] of connectorSrc) {
    const type = isPlainObject(raw) && typeof raw.type === "string" ? raw.type : undefined;
    connectorTypes.set(name, type === undefined ? undefined : options.registry.get(type));
  }
  const pipelines = new Map<string, PipelineDecl>();
  for (const [name, { raw, origin }] of pipelineSrc) {
    const decl = checkPipeline(name, raw, origin, connectorTypes, errors);
    if (decl) pipelines.set(name, decl);
  }
  if (errors.length > 0) throw new ConfigErrors(sortErrors(errors));
  return { files: texts.map((t) => t.path), connectors, pipelines };
}

function checkConnector(
  name: string,
  raw: unknown,
  { file, path }: Origin,
  registry: Registry,
  errors: ConfigError[],
): ConnectorDecl | undefined {
  if (!isPlainObject(raw)) {
    errors.push(
      located(file, path, `expected a map with "type" and its settings, got ${describe(raw)}`),
    );
    return undefined;
  }
  const { type, ...rest } = raw;
  if (typeof type !== "string") {
    errors.push(
      located(
        file,
        [...path, "type"],
        `missing connector type: expected one of ${registry.names().join(", ")}`,
      ),
    );
    return undefined;
  }
  const connectorType = registry.get(type);
  if (!connectorType) {
    errors.push(
      located(
        file,
        [...path, "type"],
        `unknown connector type "${type}": expected one of ${registry.names().join(", ")}`,
      ),
    );
    return undefined;
  }
  const parsed = connectorType.connectorSchema.safeParse(rest, { reportInput: true });
  if (!parsed.success) {
    errors.push(...issueErrors(file, path, parsed.error.issues, connectorType.connectorSchema));
    return undefined;
  }
  return {
    name,
    type: connectorType,
    settings: parsed.data,
    fingerprint: canonicalJson(raw),
    location: file.locate(path, { key: true }),
  };
}

function checkPipeline(
  name: string,
  raw: unknown,
  { file, path }: Origin,
  declared: Map<string, AnyConnectorType | undefined>,
  errors: ConfigError[],
): PipelineDecl | undefined {
  const parsed = pipelineSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    errors.push(...issueErrors(file, path, parsed.error.issues, pipelineSchema));
    return undefined;
  }
  const p = parsed.data;
  const before = errors.length;
  const endpoint = (
    value: { connector: string; [k: string]: unknown },
    at: KeyPath,
    kind: "source" | "sink",
  ): EndpointDecl | undefined => {
    const { connector, ...rest } = value;
    if (!declared.has(connector)) {
      const known = [...declared.keys()].sort();
      errors.push(
        located(
          file,
          [...at, "connector"],
          `unknown connector "${connector}": ${
            known.length ? `declared are ${known.join(", ")}` : "no connectors are declared"
          }`,
        ),
      );
      return undefined;
    }
    const type = declared.get(connector);
    if (!type) return undefined; // its unknown or missing type is reported already
    const schema = kind === "source" ? type.sourceSchema : type.sinkSchema;
    const settings = schema.safeParse(rest, { reportInput: true });
    if (!settings.success) {
      errors.push(...issueErrors(file, at, settings.error.issues, schema));
      return undefined;
    }
    return { connector, settings: settings.data };
  };
  const source = endpoint(p.source, [...path, "source"], "source");
  const sinks = p.sinks.map((s, i) => endpoint(s, [...path, "sinks", i], "sink"));
  let deadLetter: EndpointDecl | undefined;
  if (p.dead_letter) {
    const at = [...path, "dead_letter"];
    if (typeof p.dead_letter.subject === "string" && p.dead_letter.subject.includes("{")) {
      errors.push(
        located(
          file,
          [...at, "subject"],
          "a dead-letter subject cannot be a template: failures to render it would have nowhere to go",
        ),
      );
    } else {
      deadLetter = endpoint(p.dead_letter, at, "sink");
    }
  }
  if (p.filter !== undefined) {
    try {
      compileFilter(p.filter);
    } catch (e) {
      if (!(e instanceof FilterCompileError)) throw e;
      const loc = file.locate([...path, "filter"], { offset: e.offset });
      errors.push(
        new ConfigError(`invalid filter: ${e.message}`, formatPath([...path, "filter"]), loc),
      );
    }
  }
  if (errors.length > before || !source || sinks.some((s) => !s)) return undefined;
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

function interpolateTree(
  file: YamlFile,
  value: unknown,
  path: KeyPath,
  env: (name: string) => string | undefined,
  errors: ConfigError[],
): unknown {
  if (typeof value === "string") {
    const r = interpolate(value, env);
    if ("error" in r) {
      errors.push(located(file, path, r.error));
      return value;
    }
    return r.value;
  }
  if (Array.isArray(value)) {
    return value.map((v, i) => interpolateTree(file, v, [...path, i], env, errors));
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = interpolateTree(file, v, [...path, k], env, errors);
    }
    return out;
  }
  return value;
}

type Issue = z.core.$ZodIssue;

function issueErrors(
  file: YamlFile,
  prefix: KeyPath,
  issues: readonly Issue[],
  schema: z.ZodType,
): ConfigError[] {
  const out: ConfigError[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(schema, issue.path as (string | number)[]);
      for (const key of issue.keys) {
        const hint = suggest(key, known);
        const expected = known.length
          ? `; expected ${hint ? `"${hint}"? Keys here are` : "one of"} ${known.join(", ")}`
          : "";
        out.push(located(file, [...path, key], `unknown key "${key}"${expected}`, true));
      }
      continue;
    }
    const offset = issue.code === "custom"
      ? (issue.params as { offset?: number } | undefined)?.offset
      : undefined;
    const loc = file.locate(path, offset === undefined ? {} : { offset });
    out.push(new ConfigError(issueMessage(issue), formatPath(path), loc));
  }
  return out;
}

function issueMessage(issue: Issue): string {
  if (issue.code === "invalid_type") {
    if (issue.input === undefined) return `missing: expected ${issue.expected}`;
    return `expected ${issue.expected}, got ${describe(issue.input)}`;
  }
  if (issue.code === "invalid_union") {
    if (issue.input === undefined) return "missing value";
    return `unexpected ${describe(issue.input)}: ${
      issue.message.replace(/^Invalid input:?\s*/, "") || "see the configuration reference"
    }`;
  }
  if (issue.code === "invalid_value") {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
      describe(issue.input)
    }`;
  }
  return issue.message.replace(/^Invalid input:\s*/, "");
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  return `${typeof v} ${String(v)}`;
}

/** Keys allowed by the object schema found at `path` inside `schema`, for unknown-key hints. */
function knownKeys(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  let s: unknown = schema;
  const unwrap = (x: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (x as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return x;
      if (def.type === "optional" || def.type === "default" || def.type === "nullable") {
        x = def.innerType;
      } else if (def.type === "pipe") x = def.in;
      else return x;
    }
    return x;
  };
  for (const step of path) {
    s = unwrap(s);
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return [];
    if (def.type === "object") s = (def.shape as Record<string, unknown>)[String(step)];
    else if (def.type === "array") s = def.element;
    else if (def.type === "record") s = def.valueType;
    else return [];
  }
  s = unwrap(s);
  const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  return def?.type === "object" ? Object.keys(def.shape as object) : [];
}

function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function located(file: YamlFile, path: KeyPath, message: string, key = false): ConfigError {
  return new ConfigError(message, formatPath(path), file.locate(path, { key }));
}

function where(l: Location): string {
  return `${l.file}:${l.line}:${l.column}`;
}

function sortErrors(errors: ConfigError[]): ConfigError[] {
  return errors.sort((a, b) => {
    const x = a.location, y = b.location;
    if (!x || !y) return x ? 1 : y ? -1 : 0;
    return x.file.localeCompare(y.file) || x.line - y.line || x.column - y.column;
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function canonicalJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      isPlainObject(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b)))
        : x,
  );
}
