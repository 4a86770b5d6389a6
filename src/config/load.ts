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
import { compileChain } from "../processors/chain.ts";
import { builtinProcessors, type ProcessorRegistry } from "../processors/mod.ts";
import type { AnyConnectorType, Registry } from "../registry.ts";
import { isValidToken } from "../connectors/nats/subject.ts";
import type {
  BufferDecl,
  Config,
  ConnectorDecl,
  EndpointDecl,
  HealthDecl,
  PipelineDecl,
} from "./config.ts";
import { NAME_PATTERN, NAME_RULE } from "./fields.ts";
import { keysAt } from "./keys.ts";
import { interpolate } from "./interpolate.ts";
import { describeMissing, type MissingPermission, missingPermission } from "../permissions.ts";
import { fileSchema, type HealthInput, pipelineSchema } from "./schema.ts";
import { formatPath, type KeyPath, MAX_FILE_BYTES, YamlFile } from "./yaml_file.ts";

/** Options of {@link loadConfig}. */
export interface LoadOptions {
  /** The processor kinds a `processors:` list may name; the built-in ones by default. */
  processors?: ProcessorRegistry;
  /** The connector types that declarations may name. */
  registry: Registry;
  /** Looks up `${VAR}` references. @default Deno.env.get */
  env?: (name: string) => string | undefined;
  /**
   * The host's name, the default of `health.instance`; only asked when a `health:` section
   * leaves `instance` out. @default Deno.hostname
   */
  hostname?: () => string;
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
      if (!info.isFile) {
        // A FIFO or device (/dev/zero) would block or never end: only regular files are read.
        errors.push(fileError(path, "not a regular file: expected a YAML file or a directory"));
        continue;
      }
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
        if (!/\.ya?ml$/.test(entry.name)) continue;
        const file = `${path.replace(/\/+$/, "")}/${entry.name}`;
        // Follow symlinks: Kubernetes mounts ConfigMap entries as links into a `..data` directory.
        if (entry.isFile || (entry.isSymlink && await isFileTarget(file))) inDir.push(file);
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

async function isFileTarget(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false; // a dangling link is no config file
  }
}

function readProblem(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  const missing = missingPermission(e);
  if (missing) return `cannot read it: ${describeMissing(missing)}`;
  if (e instanceof Deno.errors.PermissionDenied) {
    return `cannot read it: ${e.message} (the file's owner or mode keeps this user out)`;
  }
  return `cannot read it: ${e instanceof Error ? e.message : String(e)}`;
}

/** The YAML library reads two debug switches from the environment while it parses. */
const YAML_ENV = ["LOG_TOKENS", "LOG_STREAM"];

function yamlPermissionProblem(missing: MissingPermission): string {
  if (missing.kind !== "env" || !YAML_ENV.includes(missing.target ?? "")) {
    return describeMissing(missing);
  }
  return `permission to read environment variables ${
    YAML_ENV.map((v) => `"${v}"`).join(" and ")
  } (debug switches of the YAML parser) is missing: run with --allow-env=${
    YAML_ENV.join(",")
  } plus the variables the configuration uses`;
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
  let healthSrc: { value: HealthInput; origin: Origin } | undefined;

  for (const { path, text } of texts) {
    // Checked here too, for callers that read the text themselves (UTF-16 length bounds bytes/3).
    const bytes = text.length * 3 > MAX_FILE_BYTES ? new TextEncoder().encode(text).length : 0;
    if (bytes > MAX_FILE_BYTES) {
      errors.push(
        fileError(path, `file is ${bytes} bytes; config files may be at most ${MAX_FILE_BYTES}`),
      );
      continue;
    }
    let parsed: ReturnType<typeof YamlFile.parse>;
    try {
      parsed = YamlFile.parse(path, text);
    } catch (e) {
      const missing = missingPermission(e);
      if (!missing) throw e;
      // The same permission fails every file alike: say it once.
      errors.push(fileError(path, `cannot parse it: ${yamlPermissionProblem(missing)}`));
      break;
    }
    const { file, errors: syntax } = parsed;
    if (syntax.length > 0) {
      errors.push(...syntax);
      continue;
    }
    if (file.value === undefined || file.value === null) continue; // empty file: nothing declared
    if (!isPlainObject(file.value)) {
      errors.push(
        located(
          file,
          [],
          `expected a map of sections (${
            keysAt(fileSchema, []).join(", ")
          }) at the top level, got ${describe(file.value)}`,
        ),
      );
      continue;
    }
    const value = interpolateTree(file, file.value, [], env, errors);
    const top = fileSchema.safeParse(value, { reportInput: true });
    if (!top.success) {
      errors.push(...issueErrors(file, [], top.error.issues, fileSchema));
      continue;
    }
    for (
      const [section, target] of [["connectors", connectorSrc], ["pipelines", pipelineSrc]] as const
    ) {
      // Entries of the parsed YAML, not of Zod's copy: there a `__proto__` name would be lost.
      const declared = (value as Record<string, Record<string, unknown> | undefined>)[section];
      for (const [name, raw] of Object.entries(declared ?? {})) {
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
    const health = top.data.health;
    if (health !== undefined) {
      if (healthSrc) {
        const first = healthSrc.origin.file.locate(healthSrc.origin.path, { key: true });
        errors.push(
          located(file, ["health"], `health is declared twice; first at ${where(first)}`, true),
        );
      } else {
        healthSrc = { value: health, origin: { file, path: ["health"] } };
      }
    }
  }
  for (const [label, map] of [["connectors", connectorSrc], ["pipelines", pipelineSrc]] as const) {
    if (map.size > MAX_DECLARATIONS) {
      // Point at the first declaration over the limit, so the operator sees where it was crossed.
      const [, { origin }] = [...map][MAX_DECLARATIONS]!;
      errors.push(
        new ConfigError(
          `${map.size} ${label} declared; at most ${MAX_DECLARATIONS} are supported`,
          label,
          origin.file.locate(origin.path, { key: true }),
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
  const processors = options.processors ?? builtinProcessors();
  for (const [name, { raw, origin }] of pipelineSrc) {
    const decl = checkPipeline(name, raw, origin, connectorTypes, processors, errors);
    if (decl) pipelines.set(name, decl);
  }
  const health = healthSrc
    ? checkHealth(healthSrc.value, healthSrc.origin, connectorTypes, options, errors)
    : undefined;
  if (errors.length > 0) throw new ConfigErrors(sortErrors(errors));
  return { files: texts.map((t) => t.path), connectors, pipelines, health };
}

function checkHealth(
  input: HealthInput,
  { file, path }: Origin,
  declared: Map<string, AnyConnectorType | undefined>,
  options: LoadOptions,
  errors: ConfigError[],
): HealthDecl | undefined {
  const before = errors.length;
  if (input.nats) {
    const at = [...path, "nats", "connector"];
    const name = input.nats.connector;
    const type = declared.get(name);
    if (!declared.has(name)) {
      const known = [...declared.keys()].sort();
      errors.push(
        located(
          file,
          at,
          `unknown connector "${name}": ${
            known.length ? `declared are ${known.join(", ")}` : "no connectors are declared"
          }`,
        ),
      );
    } else if (type && type.type !== "nats") {
      errors.push(
        located(
          file,
          at,
          `connector "${name}" is of type "${type.type}": health over NATS needs a nats connector`,
        ),
      );
    }
  }
  let instance = input.instance;
  if (instance === undefined) {
    try {
      instance = (options.hostname ?? Deno.hostname)();
    } catch (e) {
      const hint = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
        ? "grant --allow-sys=hostname or set health.instance"
        : "set health.instance";
      errors.push(
        located(
          file,
          path,
          `cannot read the hostname, the default instance name (${
            e instanceof Error ? e.message : String(e)
          }): ${hint}`,
          true,
        ),
      );
      return undefined;
    }
    // The instance forms one subject token only when health goes over NATS.
    if (input.nats && !isValidToken(instance)) {
      errors.push(
        located(
          file,
          path,
          `the hostname "${instance}" is not a valid subject token for sluice.health.<instance>: set health.instance`,
          true,
        ),
      );
    }
  }
  if (errors.length > before) return undefined;
  return {
    listen: input.listen ?? undefined,
    instance,
    nats: input.nats,
    location: file.locate(path, { key: true }),
  };
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
  processors: ProcessorRegistry,
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
  const endpoint = (
    value: { connector: string; [k: string]: unknown },
    at: KeyPath,
    kind: "source" | "sink",
  ): EndpointDecl | undefined => {
    // `buffer` and `when` are the engine's, not the connector type's; a source has neither (its
    // schema says so).
    const { connector, buffer, when: _when, ...sinkRest } = value;
    const rest = kind === "sink" || buffer === undefined ? sinkRest : { ...sinkRest, buffer };
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
    return kind === "sink" && buffer !== undefined
      ? { connector, settings: settings.data, buffer: buffer as BufferDecl }
      : { connector, settings: settings.data };
  };
  const source = p.source && endpoint(p.source, [...path, "source"], "source");
  const sinks = (p.sinks ?? []).map((s, i) => s && endpoint(s, [...path, "sinks", i], "sink"));
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
  const sourceType = p.source ? declared.get(p.source.connector) : undefined;
  const separator = (sourceType as { tokenSeparator?: string } | undefined)?.tokenSeparator ?? ".";
  const chain = compileChain(
    processors,
    p.filter,
    isPlainObject(raw) ? raw.processors : undefined,
    {
      separator,
    },
  );
  for (const problem of chain.problems) {
    const at = [...path, ...problem.path];
    if ("issues" in problem) {
      errors.push(...issueErrors(file, at, problem.issues, problem.schema));
    } else {
      const loc = file.locate(
        at,
        problem.offset === undefined
          ? { key: problem.key ?? false }
          : { offset: problem.offset, value: problem.value },
      );
      errors.push(new ConfigError(problem.message, formatPath(at), loc));
    }
  }
  (p.sinks ?? []).forEach((s, i) => {
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
  if (errors.length > before || !parsed.success || !source || sinks.some((s) => !s)) {
    return undefined;
  }
  return {
    name,
    source,
    filter: p.filter,
    processors: chain.processors,
    sinks: sinks as EndpointDecl[],
    deadLetter,
    fingerprint: canonicalJson(raw),
    location: file.locate(path, { key: true }),
  };
}

type Endpoint = { connector: string; [k: string]: unknown };

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

function interpolateTree(
  file: YamlFile,
  value: unknown,
  path: KeyPath,
  env: (name: string) => string | undefined,
  errors: ConfigError[],
): unknown {
  if (typeof value === "string") {
    let r: ReturnType<typeof interpolate>;
    try {
      r = interpolate(value, env);
    } catch (e) {
      const missing = missingPermission(e);
      if (!missing) throw e;
      errors.push(located(file, path, describeMissing(missing)));
      return value;
    }
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
  // A map with an unknown key (usually a misspelt one) fails its cross-field checks as a
  // consequence ("expected one of token, ..." for `tokn:`): report the typo alone.
  const misspelt = new Set(
    issues.filter((i) => i.code === "unrecognized_keys").map((i) => JSON.stringify(i.path)),
  );
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(schema, issue.path as (string | number)[]);
      for (const key of issue.keys) {
        const hint = suggest(key, known);
        const expected = known.length
          ? `${hint ? ` (did you mean "${hint}"?)` : ""}: expected one of ${known.join(", ")}`
          : "";
        out.push(located(file, [...path, key], `unknown key "${key}"${expected}`, true));
      }
      continue;
    }
    if (issue.code === "custom" && misspelt.has(JSON.stringify(issue.path))) continue;
    const offset = issue.code === "custom"
      ? (issue.params as { offset?: number } | undefined)?.offset
      : undefined;
    const loc = file.locate(
      path,
      offset === undefined
        ? {}
        : { offset, value: typeof issue.input === "string" ? issue.input : undefined },
    );
    const shown = isSecretPath(path) && issue.input !== undefined
      ? { ...issue, input: new Hidden(issue.input) } as Issue
      : issue;
    out.push(new ConfigError(issueMessage(shown), formatPath(path), loc));
  }
  return out;
}

function issueMessage(issue: Issue): string {
  if (issue.code === "invalid_type") {
    if (issue.input === undefined) return `missing: expected ${typeName(issue.expected)}`;
    return `expected ${typeName(issue.expected)}, got ${describe(issue.input)}`;
  }
  if (issue.code === "invalid_union") {
    if (issue.input === undefined) return "missing value";
    // Name what each alternative expected, e.g. "expected a string or a list, got number 5".
    const expected = new Set<string>();
    for (const branch of issue.errors) {
      const first = branch[0];
      if (first?.code === "invalid_type" && first.path.length === 0) {
        expected.add(typeName(first.expected));
      }
    }
    if (expected.size > 0 && expected.size === issue.errors.length) {
      return `expected ${[...expected].join(" or ")}, got ${describe(issue.input)}`;
    }
    return `unexpected ${describe(issue.input)}: ${
      issue.message.replace(/^Invalid input:?\s*/, "") || "see the configuration reference"
    }`;
  }
  if (issue.code === "invalid_value") {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
      describe(issue.input)
    }`;
  }
  if (
    (issue.code === "too_small" || issue.code === "too_big") &&
    /^Too (small|big)/.test(issue.message)
  ) {
    // Zod's default wording ("Too small: expected number to be >=-1"); custom messages are kept.
    const small = issue.code === "too_small";
    const bound = Number(small ? issue.minimum : issue.maximum);
    const inclusive = issue.inclusive !== false;
    const got = describe(issue.input);
    if (issue.origin === "string" && small && bound === 1 && inclusive) {
      return `expected a non-empty string, got ${got}`;
    }
    const limit = small
      ? (inclusive ? "at least" : "more than")
      : (inclusive ? "at most" : "less than");
    const unit = issue.origin === "string"
      ? " characters"
      : issue.origin === "array"
      ? ` item${bound === 1 ? "" : "s"}`
      : "";
    return `expected ${limit} ${bound}${unit}, got ${got}`;
  }
  return issue.message.replace(/^Invalid input:\s*/, "");
}

/** Zod's type names in the words of YAML: a map, a list. */
function typeName(expected: string): string {
  switch (expected) {
    case "object":
    case "record":
    case "map":
      return "a map";
    case "array":
    case "tuple":
      return "a list";
    case "int":
      return "an integer";
    case "boolean":
      return "true or false";
    case "string":
      return "a string";
    case "number":
      return "a number";
    default:
      return expected;
  }
}

/** Keys whose values are (or lead to) credentials: messages name their type, never their value. */
const SECRET_KEYS = new Set(["auth", "token", "password", "user", "tls"]);

function isSecretPath(path: KeyPath): boolean {
  return path.some((step) => typeof step === "string" && SECRET_KEYS.has(step));
}

/** A value that messages describe by its type only. */
class Hidden {
  constructor(readonly value: unknown) {}
}

function describe(v: unknown): string {
  if (v instanceof Hidden) {
    const inner = v.value;
    if (inner === undefined) return "nothing";
    return inner === null || typeof inner === "object" ? describe(inner) : `a ${typeof inner}`;
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  return `${typeof v} ${String(v)}`;
}

function suggest(key: string, known: readonly string[]): string | undefined {
  // `ca` for `ca_file`, `cert` for `cert_file`: a known key that the unknown one begins.
  const lower = key.toLowerCase();
  const extended = known.filter((k) => lower.length >= 2 && k.toLowerCase().startsWith(lower));
  if (extended.length === 1) return extended[0];
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
