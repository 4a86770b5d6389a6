/**
 * Parses config texts and merges their declarations: connectors and pipelines by name across
 * files (a name declared twice is an error naming both places), and the one `health:` section.
 * Values are interpolated and the top level is checked here; each declaration's own settings are
 * checked later, by the checks of its kind.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { describeMissing, type MissingPermission, missingPermission } from "../permissions.ts";
import type { Registry } from "../registry.ts";
import { collectConnectorSecrets } from "./connector_secrets.ts";
import { NAME_PATTERN, NAME_RULE } from "./fields.ts";
import { interpolateTree, type Substitution } from "./interpolate_tree.ts";
import { describe, issueErrors } from "./issues.ts";
import { keysAt } from "./keys.ts";
import { fileError, isPlainObject, located, type Origin, where } from "./located.ts";
import type { ConfigText } from "./read.ts";
import { fileSchema, type FleetInput, type HealthInput } from "./schema.ts";
import type { Secrets } from "./secrets.ts";
import { MAX_FILE_BYTES, YamlFile } from "./yaml_file.ts";

/** Most pipelines or connectors one config may declare; far beyond any gateway's needs. */
export const MAX_DECLARATIONS = 10_000;

/** One declaration as written (interpolated), and where. */
export interface Declared {
  raw: unknown;
  origin: Origin;
}

/** Every declaration of a config, merged across its files. */
export interface Declarations {
  connectors: Map<string, Declared>;
  pipelines: Map<string, Declared>;
  health: { value: HealthInput; origin: Origin } | undefined;
  fleet: { value: FleetInput; origin: Origin } | undefined;
}

/** What merging needs besides the texts. */
export interface MergeContext {
  env: (name: string) => string | undefined;
  registry: Registry;
  /** Receives the secrets of connector declarations, for redacting messages. */
  secrets: Secrets;
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

/**
 * Parses, interpolates and merges `texts`.
 *
 * @param errors Receives every problem found; the declarations are complete only without any.
 */
export function mergeTexts(
  texts: readonly ConfigText[],
  ctx: MergeContext,
  errors: ConfigError[],
): Declarations {
  const out: Declarations = {
    connectors: new Map(),
    pipelines: new Map(),
    health: undefined,
    fleet: undefined,
  };
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
    const substitutions: Substitution[] = [];
    const value = interpolateTree(file, file.value, [], ctx.env, errors, substitutions);
    collectConnectorSecrets(value, substitutions, ctx.registry, ctx.secrets);
    const top = fileSchema.safeParse(value, { reportInput: true });
    if (!top.success) {
      errors.push(...issueErrors(file, [], top.error.issues, fileSchema));
      continue;
    }
    for (const section of ["connectors", "pipelines"] as const) {
      // Entries of the parsed YAML, not of Zod's copy: there a `__proto__` name would be lost.
      const declared = (value as Record<string, Record<string, unknown> | undefined>)[section];
      addDeclarations(file, section, declared ?? {}, out[section], errors);
    }
    for (const section of ["health", "fleet"] as const) {
      const value = top.data[section];
      if (value === undefined) continue;
      const previous = out[section];
      if (previous) {
        const first = previous.origin.file.locate(previous.origin.path, { key: true });
        errors.push(
          located(file, [section], `${section} is declared twice; first at ${where(first)}`, true),
        );
      } else if (section === "health") {
        out.health = { value: value as HealthInput, origin: { file, path: [section] } };
      } else {
        out.fleet = { value: value as FleetInput, origin: { file, path: [section] } };
      }
    }
  }
  for (const section of ["connectors", "pipelines"] as const) {
    const map = out[section];
    if (map.size > MAX_DECLARATIONS) {
      // Point at the first declaration over the limit, so the operator sees where it was crossed.
      const [, { origin }] = [...map][MAX_DECLARATIONS]!;
      errors.push(
        new ConfigError(
          `${map.size} ${section} declared; at most ${MAX_DECLARATIONS} are supported`,
          section,
          origin.file.locate(origin.path, { key: true }),
        ),
      );
    }
  }
  return out;
}

function addDeclarations(
  file: YamlFile,
  section: "connectors" | "pipelines",
  declared: Record<string, unknown>,
  target: Map<string, Declared>,
  errors: ConfigError[],
): void {
  for (const [name, raw] of Object.entries(declared)) {
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
