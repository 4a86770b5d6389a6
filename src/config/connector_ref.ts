/**
 * A reference to a declared connector by name (`connector: uplink`), checked the same way wherever
 * one appears: a pipeline's source or sink, `health.nats`, `fleet:`.
 *
 * @module
 */
import type { ConfigError } from "../errors.ts";
import type { AnyConnectorType } from "../registry.ts";
import { located } from "./located.ts";
import type { KeyPath, YamlFile } from "./yaml_file.ts";

/** Why `name` names no declared connector, listing those that are. */
export function unknownConnector(
  name: string,
  declared: ReadonlyMap<string, AnyConnectorType | undefined>,
): string {
  const known = [...declared.keys()].sort();
  return `unknown connector "${name}": ${
    known.length ? `declared are ${known.join(", ")}` : "no connectors are declared"
  }`;
}

/**
 * Checks that `name` (at `at` in `file`) is a declared connector of type `type`, for `purpose`
 * ("the fleet", "health over NATS"); a connector whose own type is unknown is reported there.
 */
export function checkConnectorRef(
  file: YamlFile,
  at: KeyPath,
  name: string,
  declared: ReadonlyMap<string, AnyConnectorType | undefined>,
  need: { type: string; purpose: string },
  errors: ConfigError[],
): void {
  if (!declared.has(name)) {
    errors.push(located(file, at, unknownConnector(name, declared)));
    return;
  }
  const type = declared.get(name);
  if (type && type.type !== need.type) {
    errors.push(
      located(
        file,
        at,
        `connector "${name}" is of type "${type.type}": ${need.purpose} needs a ${need.type} connector`,
      ),
    );
  }
}
