/**
 * Validation of deployed pipelines, as `check` validates files: on the gateway against its own
 * connectors, and before `fleet deploy` writes, where the gateways' connectors are unknown.
 *
 * A deployed file holds `pipelines:` only. It is read with an empty environment: `${VAR}` is an
 * error and `${VAR:-default}` takes the default, so that remote configuration can never copy a
 * gateway's environment (its secrets) into a subject.
 *
 * @module
 */
import type { Config, PipelineDecl } from "../config/config.ts";
import { type Declarations, mergeTexts } from "../config/merge.ts";
import { fileError, isPlainObject, located, type Origin, sortErrors } from "../config/located.ts";
import { checkPipeline } from "../config/pipeline_check.ts";
import type { ConfigText } from "../config/read.ts";
import { Secrets } from "../config/secrets.ts";
import type { ConfigError } from "../errors.ts";
import { builtinProcessors, type ProcessorRegistry } from "../processors/mod.ts";
import type { AnyConnectorType, Registry } from "../registry.ts";

/** The environment of a deployed file: empty. */
const NO_ENV = () => undefined;

/** Reports the sections a deployed file may not hold. */
function onlyPipelines(d: Declarations, errors: ConfigError[]): void {
  const forbidden: [string, Origin | undefined][] = [
    ["connectors", [...d.connectors.values()][0]?.origin],
    ["health", d.health?.origin],
    ["fleet", d.fleet?.origin],
  ];
  for (const [section, origin] of forbidden) {
    if (!origin) continue;
    errors.push(
      located(
        origin.file,
        [section],
        `a deployed file holds pipelines: only; ${section}: stays in the gateway's local files ` +
          "(connectors and credentials never travel)",
        true,
      ),
    );
  }
}

/** Where a deployed pipeline's outboxes go: under `state_dir`, never where the file says. */
export const OUTBOX_DIR = "outbox";

/**
 * Checks the `buffer.path`s of a raw pipeline: a deployed pipeline may name an outbox file only
 * relative to the gateway's own outbox directory (`<state_dir>/outbox/`), so that remote
 * configuration cannot make a gateway write anywhere else.
 */
function checkBufferPaths(raw: unknown, origin: Origin, errors: ConfigError[]): void {
  if (!isPlainObject(raw)) return;
  const check = (endpoint: unknown, at: (string | number)[]) => {
    if (!isPlainObject(endpoint) || !isPlainObject(endpoint.buffer)) return;
    const path = endpoint.buffer.path;
    if (typeof path !== "string") return;
    if (path.startsWith("/") || path.split(/[\\/]/).includes("..")) {
      errors.push(
        located(
          origin.file,
          [...origin.path, ...at, "buffer", "path"],
          `a deployed pipeline's outbox path is relative to the gateway's ${OUTBOX_DIR} directory ` +
            `(under fleet.state_dir): no absolute path and no "..", got "${path}"`,
        ),
      );
    }
  };
  if (Array.isArray(raw.sinks)) raw.sinks.forEach((s, i) => check(s, ["sinks", i]));
  check(raw.dead_letter, ["dead_letter"]);
}

/** Options of the validations. */
export interface ValidateOptions {
  registry: Registry;
  /** @default builtinProcessors() */
  processors?: ProcessorRegistry;
}

/**
 * Validates the deployed text of pipeline `name` on this gateway, against the connectors of the
 * local configuration.
 *
 * @param path Where the text comes from, for messages (e.g. `gw.gw-01.meters@12`).
 * @returns The declaration, or the errors as `file:line:col: path: message` lines.
 */
export function validateDeployed(
  name: string,
  path: string,
  text: string,
  local: Config,
  options: ValidateOptions,
): { decl: PipelineDecl } | { errors: string[] } {
  const errors: ConfigError[] = [];
  const secrets = new Secrets();
  const d = mergeTexts(
    [{ path, text }],
    { env: NO_ENV, registry: options.registry, secrets },
    errors,
  );
  onlyPipelines(d, errors);
  if (errors.length > 0) return { errors: sortErrors(errors).map(String) };
  const declared = new Map<string, AnyConnectorType | undefined>();
  for (const [n, c] of local.connectors) declared.set(n, c.type);
  const ctx = {
    declared,
    registry: options.registry,
    processors: options.processors ?? builtinProcessors(),
  };
  let decl: PipelineDecl | undefined;
  for (const [n, { raw, origin }] of d.pipelines) {
    if (n !== name) {
      errors.push(
        located(origin.file, origin.path, `expected only pipeline "${name}" under this key`, true),
      );
      continue;
    }
    checkBufferPaths(raw, origin, errors);
    decl = checkPipeline(n, raw, origin, ctx, errors);
  }
  if (errors.length > 0) return { errors: sortErrors(errors).map(String) };
  if (!decl) return { errors: [`${path}: pipeline "${name}" is missing`] };
  const outboxes = `${local.fleet?.stateDir ?? "."}/${OUTBOX_DIR}`;
  for (const e of [...decl.sinks, decl.deadLetter]) {
    if (e?.buffer) e.buffer = { ...e.buffer, path: `${outboxes}/${e.buffer.path}` };
  }
  return { decl };
}

/** Connector names a raw pipeline declaration refers to. */
function connectorNames(raw: unknown): string[] {
  if (!isPlainObject(raw)) return [];
  const names: string[] = [];
  const add = (v: unknown) => {
    if (isPlainObject(v) && typeof v.connector === "string") names.push(v.connector);
  };
  add(raw.source);
  add(raw.dead_letter);
  if (Array.isArray(raw.sinks)) raw.sinks.forEach(add);
  if (Array.isArray(raw.processors)) {
    for (const p of raw.processors) if (isPlainObject(p)) Object.values(p).forEach(add);
  }
  return names;
}

/**
 * Validates files for `fleet deploy`: everything `check` checks that does not depend on the
 * gateway. Connector names cannot be checked (only the gateways know theirs); a source's or
 * sink's settings are checked against the connector type their keys imply.
 *
 * @returns The pipelines by name with their raw declaration, or every error found.
 */
export function validateForDeploy(
  texts: readonly ConfigText[],
  options: ValidateOptions,
): { pipelines: Map<string, unknown>; errors: ConfigError[] } {
  const errors: ConfigError[] = [];
  const secrets = new Secrets();
  const d = mergeTexts(texts, { env: NO_ENV, registry: options.registry, secrets }, errors);
  onlyPipelines(d, errors);
  const processors = options.processors ?? builtinProcessors();
  const pipelines = new Map<string, unknown>();
  for (const [name, { raw, origin }] of d.pipelines) {
    // Every connector named is taken as declared, of a type guessed from the endpoint's keys.
    const declared = new Map<string, AnyConnectorType | undefined>(
      connectorNames(raw).map((n) => [n, undefined]),
    );
    checkBufferPaths(raw, origin, errors);
    checkPipeline(name, raw, origin, { declared, registry: options.registry, processors }, errors);
    pipelines.set(name, raw);
  }
  if (errors.length === 0 && pipelines.size === 0) {
    errors.push(fileError(texts[0]?.path ?? "", "no pipelines: nothing to deploy"));
  }
  return { pipelines, errors: sortErrors(errors) };
}
