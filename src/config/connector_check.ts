/**
 * Checks one connector declaration with its type's schema, and, asynchronously, the files it
 * names (credentials, certificates) through its type's `checkFiles`.
 *
 * @module
 */
import type { ConfigError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { ConnectorDecl } from "./config.ts";
import { describe, issueErrors } from "./issues.ts";
import { canonicalJson, isPlainObject, located, type Origin } from "./located.ts";
import { suggest } from "./suggest.ts";
import { keysNoTypeAccepts } from "./unknown_type.ts";

/**
 * Validates the declaration `raw` of connector `name`.
 *
 * @returns The declaration, or undefined when it has errors (pushed to `errors`).
 */
export function checkConnector(
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
  const connectorType = typeof type === "string" ? registry.get(type) : undefined;
  if (!connectorType) {
    const names = registry.names();
    const hint = typeof type === "string" ? suggest(type, names) : undefined;
    errors.push(
      located(
        file,
        [...path, "type"],
        typeof type === "string"
          ? `unknown connector type "${type}"${
            hint ? ` (did you mean "${hint}"?)` : ""
          }: expected one of ${names.join(", ")}`
          : `missing connector type: expected one of ${names.join(", ")}`,
      ),
    );
    // Its settings can still hold typos that no type would accept: report them now.
    keysNoTypeAccepts(file, path, rest, registry.types(), (t) => t.connectorSchema, errors);
    return undefined;
  }
  const schema = connectorType.connectorSchema;
  const parsed = schema.safeParse(rest, { reportInput: true });
  if (!parsed.success) {
    errors.push(...issueErrors(file, path, parsed.error.issues, schema, connectorType.secretKeys));
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

/**
 * Checks the files each valid connector names (existence, readability, format) through its
 * type's `checkFiles`: at `check`, `run` and every reload, so that a missing credentials file is a
 * config error (exit 2), not a connector retrying forever.
 *
 * @returns One error per problem, at the key that names the file.
 */
export async function checkConnectorFiles(
  connectors: readonly { decl: ConnectorDecl; origin: Origin }[],
): Promise<ConfigError[]> {
  const checks = connectors.map(async ({ decl, origin }) => {
    let problems: { path: (string | number)[]; message: string }[];
    try {
      problems = await decl.type.checkFiles?.(decl.settings) ?? [];
    } catch (e) {
      // A check that throws is a bug of its type; the load still ends with every error found.
      const why = e instanceof Error ? e.message : String(e);
      problems = [{ path: [], message: `cannot check the files it names: ${why}` }];
    }
    return problems.map((p) => located(origin.file, [...origin.path, ...p.path], p.message, true));
  });
  return (await Promise.all(checks)).flat();
}
