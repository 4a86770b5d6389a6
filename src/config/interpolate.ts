/**
 * `${VAR}` and `${VAR:-default}` in config strings, so secrets and per-gateway values stay out of
 * the files. `$$` is a literal `$`.
 *
 * @module
 */

/** Result of interpolating one string: the value, or why it failed. */
export type Interpolated = { value: string } | { error: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces every reference in `text` with its value from `env`; an unset variable without default
 * fails.
 *
 * @param text A config string.
 * @param env Looks up a variable.
 * @param used Receives the value of each variable substituted, so that values which land under a
 *   secret key can be kept out of every message.
 */
export function interpolate(
  text: string,
  env: (name: string) => string | undefined,
  used?: string[],
): Interpolated {
  if (!text.includes("$")) return { value: text };
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== "$") {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next !== "{") {
      out += "$";
      i++;
      continue;
    }
    const close = text.indexOf("}", i + 2);
    if (close < 0) {
      return { error: `unclosed "\${" at character ${i + 1}: write "$$" for a literal "$"` };
    }
    const body = text.slice(i + 2, close);
    const sep = body.indexOf(":-");
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      return { error: `invalid variable name "${name}" in "\${${body}}"` };
    }
    const value = env(name);
    if (value !== undefined && !(sep >= 0 && value === "")) {
      out += value;
      used?.push(value);
    } else if (sep >= 0) out += body.slice(sep + 2);
    else {return {
        error: `environment variable "${name}" is not set: set it, or write "\${${name}:-default}"`,
      };}
    i = close + 1;
  }
  return { value: out };
}
