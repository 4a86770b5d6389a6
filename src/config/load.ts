/**
 * Loads configuration from files and directories: read the files, parse and merge them
 * (`merge.ts`), validate every declaration with its schema and cross-check references
 * (`connector_check.ts`, `pipeline_check.ts`, `health_check.ts`, `fleet_check.ts`), check the files connectors name,
 * and keep secrets out of every message (`secrets.ts`). Every problem of a load is collected and
 * thrown together as {@link ConfigErrors}, sorted by position.
 *
 * @module
 */
import { type ConfigError, ConfigErrors } from "../errors.ts";
import type { AnyConnectorType, Registry } from "../registry.ts";
import type { Config, ConnectorDecl, PipelineDecl } from "./config.ts";
import { checkConnector, checkConnectorFiles } from "./connector_check.ts";
import { checkFleet } from "./fleet_check.ts";
import { checkHealth } from "./health_check.ts";
import { isPlainObject, type Origin, sortErrors } from "./located.ts";
import { mergeTexts } from "./merge.ts";
import { checkPipeline } from "./pipeline_check.ts";
import { builtinProcessors, type ProcessorRegistry } from "../processors/mod.ts";
import { type ConfigText, readConfigTexts } from "./read.ts";
import { Secrets } from "./secrets.ts";
import { withRe2 } from "../filter/re2.ts";

export { MAX_DECLARATIONS } from "./merge.ts";
export type { ConfigText } from "./read.ts";

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

/**
 * Reads every `*.yaml`/`*.yml` of the given files and directories (directories not recursively,
 * sorted by name), loads them as {@link loadConfigTexts} does, and checks the files that
 * connectors name (credentials, certificates): what `check`, `run` and a reload all do.
 *
 * @throws {ConfigErrors} listing every problem found.
 */
export async function loadConfig(paths: readonly string[], options: LoadOptions): Promise<Config> {
  const { texts, errors: readErrors } = await readConfigTexts(paths);
  if (readErrors.length > 0) throw new ConfigErrors(readErrors);
  const v = await withRe2(() => validateTexts(texts, options));
  // Written by the connector type about a file it names: paths, never contents.
  const fileErrors = await checkConnectorFiles(v.connectors);
  const errors = [...v.secrets.redactErrors(v.errors), ...v.secrets.redactUrls(fileErrors)];
  if (errors.length > 0 || !v.config) throw new ConfigErrors(sortErrors(errors));
  return v.config;
}

/**
 * Loads configuration from file texts: the synchronous heart of {@link loadConfig}, free of I/O
 * for tests. Files named by connectors are not checked. An expression that calls `matches` needs
 * re2js loaded first (`loadRe2` in `filter/re2.ts`), as {@link loadConfig} does by itself.
 *
 * @throws {ConfigErrors} listing every problem found.
 */
export function loadConfigTexts(texts: readonly ConfigText[], options: LoadOptions): Config {
  const v = validateTexts(texts, options);
  if (v.errors.length > 0 || !v.config) {
    throw new ConfigErrors(sortErrors(v.secrets.redactErrors(v.errors)));
  }
  return v.config;
}

/** The outcome of validating texts: errors not yet redacted nor sorted. */
interface Validated {
  /** The config, when there is no error. */
  config: Config | undefined;
  errors: ConfigError[];
  /** The connectors that passed their schema, for the file checks. */
  connectors: { decl: ConnectorDecl; origin: Origin }[];
  secrets: Secrets;
}

function validateTexts(texts: readonly ConfigText[], options: LoadOptions): Validated {
  const { registry } = options;
  const processors = options.processors ?? builtinProcessors();
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const errors: ConfigError[] = [];
  const secrets = new Secrets();
  const connectors: Validated["connectors"] = [];
  const declarations = mergeTexts(texts, { env, registry, secrets }, errors);
  if (errors.length > 0) return { config: undefined, errors, connectors, secrets };

  const connectorDecls = new Map<string, ConnectorDecl>();
  for (const [name, { raw, origin }] of declarations.connectors) {
    const decl = checkConnector(name, raw, origin, registry, errors);
    if (!decl) continue;
    connectorDecls.set(name, decl);
    connectors.push({ decl, origin });
  }
  // A pipeline's endpoints are checked against their connector's type even when the connector's
  // own settings are invalid, so that one load reports both.
  const declared = new Map<string, AnyConnectorType | undefined>();
  for (const [name, { raw }] of declarations.connectors) {
    const type = isPlainObject(raw) && typeof raw.type === "string" ? raw.type : undefined;
    declared.set(name, type === undefined ? undefined : registry.get(type));
  }
  const pipelines = new Map<string, PipelineDecl>();
  for (const [name, { raw, origin }] of declarations.pipelines) {
    const decl = checkPipeline(name, raw, origin, { declared, registry, processors }, errors);
    if (decl) pipelines.set(name, decl);
  }
  const h = declarations.health;
  const health = h
    ? checkHealth(h.value, h.origin, declared, options.hostname ?? Deno.hostname, errors)
    : undefined;
  const f = declarations.fleet;
  const fleet = f
    ? checkFleet(f.value, f.origin, declared, options.hostname ?? Deno.hostname, errors)
    : undefined;
  const config = errors.length > 0 ? undefined : {
    files: texts.map((t) => t.path),
    connectors: connectorDecls,
    pipelines,
    health,
    fleet,
  };
  return { config, errors, connectors, secrets };
}
