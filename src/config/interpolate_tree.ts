/**
 * `${VAR}` interpolation of every string of a parsed config file, reporting each failure at its
 * value and recording which variable values went where (for keeping secrets out of messages).
 *
 * @module
 */
import type { ConfigError } from "../errors.ts";
import { describeMissing, missingPermission } from "../permissions.ts";
import { interpolate } from "./interpolate.ts";
import { isPlainObject, located } from "./located.ts";
import type { KeyPath, YamlFile } from "./yaml_file.ts";

/** A string into which variable values were substituted. */
export interface Substitution {
  /** Where the string stands. */
  path: KeyPath;
  /** The string after interpolation. */
  text: string;
  /** The value of each variable substituted into it. */
  values: string[];
}

/**
 * Interpolates every string inside `value`.
 *
 * @param substitutions Receives every string that a variable's value went into.
 * @returns A copy of `value` with its strings interpolated (a failed one left as written).
 */
export function interpolateTree(
  file: YamlFile,
  value: unknown,
  path: KeyPath,
  env: (name: string) => string | undefined,
  errors: ConfigError[],
  substitutions: Substitution[],
): unknown {
  if (typeof value === "string") {
    let r: ReturnType<typeof interpolate>;
    const values: string[] = [];
    try {
      r = interpolate(value, env, values);
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
    if (values.length > 0) substitutions.push({ path, text: r.value, values });
    return r.value;
  }
  if (Array.isArray(value)) {
    return value.map((v, i) => interpolateTree(file, v, [...path, i], env, errors, substitutions));
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = interpolateTree(file, v, [...path, k], env, errors, substitutions);
    }
    return out;
  }
  return value;
}
