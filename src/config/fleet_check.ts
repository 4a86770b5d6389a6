/**
 * Cross-checks of the `fleet:` section: the connector that carries the control plane must be a
 * declared nats connector, and the gateway id (the hostname unless set) one token of KV keys.
 *
 * @module
 */
import type { ConfigError } from "../errors.ts";
import type { AnyConnectorType } from "../registry.ts";
import type { FleetDecl } from "./config.ts";
import { checkConnectorRef } from "./connector_ref.ts";
import { located, type Origin } from "./located.ts";
import type { FleetInput } from "./schema.ts";

/** What a gateway id may hold: one token of KV keys and NATS subjects. */
export const FLEET_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * Validates the parsed `fleet:` section against the declared connectors.
 *
 * @param declared Declared connectors by name, with their type (undefined when unknown).
 * @param hostname Reads the host's name, the default gateway id.
 * @returns The section, or undefined when it has errors (pushed to `errors`).
 */
export function checkFleet(
  input: FleetInput,
  { file, path }: Origin,
  declared: ReadonlyMap<string, AnyConnectorType | undefined>,
  hostname: () => string,
  errors: ConfigError[],
): FleetDecl | undefined {
  const before = errors.length;
  const at = [...path, "connector"];
  checkConnectorRef(file, at, input.connector, declared, {
    type: "nats",
    purpose: "the fleet",
  }, errors);
  let id = input.id;
  if (id === undefined) {
    try {
      id = hostname();
    } catch (e) {
      errors.push(
        located(
          file,
          path,
          `cannot read the hostname, the default gateway id (${
            e instanceof Error ? e.message : String(e)
          }): set fleet.id`,
          true,
        ),
      );
      return undefined;
    }
    if (!FLEET_ID_PATTERN.test(id)) {
      errors.push(
        located(
          file,
          path,
          `the hostname "${id}" is not a valid gateway id (letters, digits, '-' and '_'): set fleet.id`,
          true,
        ),
      );
    }
  }
  if (errors.length > before) return undefined;
  return {
    connector: input.connector,
    id,
    labels: input.labels,
    bucket: input.bucket,
    domain: input.domain,
    stateDir: input.state_dir,
    location: file.locate(path, { key: true }),
  };
}
