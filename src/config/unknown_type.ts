/**
 * What can still be checked of a declaration whose connector type is not known (an undeclared
 * connector, a misspelt `type:`): its keys against every registered type, so that one `check`
 * reports a `subjet` typo together with the unknown connector instead of after its fix.
 *
 * @module
 */
import type { z } from "zod";
import type { ConfigError } from "../errors.ts";
import type { AnyConnectorType } from "../registry.ts";
import { unknownKeyErrors } from "./issues.ts";
import { keysAt } from "./keys.ts";
import type { KeyPath, YamlFile } from "./yaml_file.ts";

/**
 * The one type a declaration is meant for, when its keys tell: the only candidate that names its
 * address key (`subject` for nats, `topic` for mqtt). Undefined when none or several do.
 */
export function guessType(
  value: Record<string, unknown>,
  types: readonly AnyConnectorType[],
): AnyConnectorType | undefined {
  const named = types.filter((t) => Object.hasOwn(value, t.addressKey));
  return named.length === 1 ? named[0] : undefined;
}

/**
 * Reports the keys of `value` that no candidate type's schema accepts, with a hint drawn from
 * all of them.
 *
 * @param schemaOf The schema of a type that applies here (its sink schema for a sink, ...).
 * @param secret Secret keys of the candidates: an unknown key is quoted only if it is a typo.
 */
export function keysNoTypeAccepts(
  file: YamlFile,
  path: KeyPath,
  value: Record<string, unknown>,
  types: readonly AnyConnectorType[],
  schemaOf: (t: AnyConnectorType) => z.ZodType,
  errors: ConfigError[],
): void {
  const known = [...new Set(types.flatMap((t) => keysAt(schemaOf(t), [])))];
  const unknown = Object.keys(value).filter((k) => !known.includes(k));
  if (unknown.length > 0) errors.push(...unknownKeyErrors(file, path, unknown, known));
}
