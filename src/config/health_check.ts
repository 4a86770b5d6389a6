/**
 * Cross-checks of the `health:` section: the connector health over NATS uses, and the instance
 * name (the hostname unless set), which must be one subject token when health goes over NATS.
 *
 * @module
 */
import type { ConfigError } from "../errors.ts";
import type { AnyConnectorType } from "../registry.ts";
import type { HealthDecl } from "./config.ts";
import { isSubjectToken } from "./fields.ts";
import { checkConnectorRef } from "./connector_ref.ts";
import { located, type Origin } from "./located.ts";
import type { HealthInput } from "./schema.ts";

/**
 * Validates the parsed `health:` section against the declared connectors.
 *
 * @param declared Declared connectors by name, with their type (undefined when unknown).
 * @param hostname Reads the host's name, the default instance name.
 * @returns The section, or undefined when it has errors (pushed to `errors`).
 */
export function checkHealth(
  input: HealthInput,
  { file, path }: Origin,
  declared: ReadonlyMap<string, AnyConnectorType | undefined>,
  hostname: () => string,
  errors: ConfigError[],
): HealthDecl | undefined {
  const before = errors.length;
  if (input.nats) {
    const at = [...path, "nats", "connector"];
    checkConnectorRef(file, at, input.nats.connector, declared, {
      type: "nats",
      purpose: "health over NATS",
    }, errors);
  }
  let instance = input.instance;
  if (instance === undefined) {
    try {
      instance = hostname();
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
    if (input.nats && !isSubjectToken(instance)) {
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
