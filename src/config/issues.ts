/**
 * Turns zod issues into located config errors in the words of YAML ("a map", "a list"), with
 * "did you mean" hints for unknown keys, and without quoting values under secret keys.
 *
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import { keysAt } from "./keys.ts";
import { located } from "./located.ts";
import { suggest } from "./suggest.ts";
import { formatPath, type KeyPath, type YamlFile } from "./yaml_file.ts";

type Issue = z.core.$ZodIssue;

/** A key that is quoted in messages even under a secret key: short, and a known key's typo. */
const SHOWABLE_KEY = /^[A-Za-z0-9_-]{1,40}$/;

/**
 * Errors for keys that a map at `path` does not accept, one per key, at the key.
 *
 * @param known The keys it accepts, for the hint and the list.
 * @param secret The map is under a secret key: a key that is no typo of a known one may be a
 *   secret written in the wrong place (`{password=hunter2}`), so it is not quoted.
 */
export function unknownKeyErrors(
  file: YamlFile,
  path: KeyPath,
  keys: readonly string[],
  known: readonly string[],
  secret = false,
): ConfigError[] {
  return keys.map((key) => {
    const hint = suggest(key, known);
    const expected = known.length
      ? `${hint ? ` (did you mean "${hint}"?)` : ""}: expected one of ${known.join(", ")}`
      : "";
    if (secret && !(hint !== undefined && SHOWABLE_KEY.test(key))) {
      // Located at the key itself, but named neither in the path nor in the message.
      return new ConfigError(
        `unknown key (not shown: keys here may hold secrets)${expected}`,
        formatPath(path),
        file.locate([...path, key], { key: true }),
      );
    }
    return located(file, [...path, key], `unknown key "${key}"${expected}`, true);
  });
}

/**
 * Located errors for the issues of validating the value at `prefix` with `schema`.
 *
 * @param secretKeys Keys of the validated map whose values are never quoted (shown by type).
 */
export function issueErrors(
  file: YamlFile,
  prefix: KeyPath,
  issues: readonly Issue[],
  schema: z.ZodType,
  secretKeys: readonly string[] = [],
): ConfigError[] {
  const out: ConfigError[] = [];
  const isSecret = (path: readonly PropertyKey[]) =>
    typeof path[0] === "string" && secretKeys.includes(path[0]);
  // A map with an unknown key (usually a misspelt one) fails its cross-field checks as a
  // consequence ("expected one of token, ..." for `tokn:`): report the typo alone.
  const misspelt = new Set(
    issues.filter((i) => i.code === "unrecognized_keys").map((i) => JSON.stringify(i.path)),
  );
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(schema, issue.path as (string | number)[]);
      out.push(...unknownKeyErrors(file, path, issue.keys, known, isSecret(issue.path)));
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
    const shown = isSecret(issue.path) && issue.input !== undefined
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

/** A value that messages describe by its type only. */
class Hidden {
  constructor(readonly value: unknown) {}
}

/** A value as messages show it: `string "abc"`, `number 5`, `a map`. */
export function describe(v: unknown): string {
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
