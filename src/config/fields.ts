/**
 * Zod field types shared by component schemas: durations, sizes, names. Each parses the operator's
 * text into the value the runtime uses, and its failure message says what was expected.
 *
 * @module
 */
import * as z from "zod";
import { parseDuration, parseSize } from "./units.ts";

/** A duration string (`250ms`, `2s`, `5m`, `1h`) parsed to milliseconds. */
export function duration(description: string) {
  return z.string().describe(description).transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message:
          `invalid duration "${text}": expected a number with a unit, e.g. 250ms, 2s, 5m, 1h`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

/** A size string (`512KiB`, `64MiB`, `1GiB`) parsed to bytes. */
export function size(description: string) {
  return z.string().describe(description).transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `invalid size "${text}": expected a number with a unit, e.g. 512KiB, 64MiB, 1GiB`,
      });
      return z.NEVER;
    }
    return bytes;
  });
}

/** Names of connectors and pipelines: they appear in logs, metric labels and subjects. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Describes {@link NAME_PATTERN} in messages. */
export const NAME_RULE = "letters, digits, '-' and '_', starting with a letter or digit";

/**
 * Tells whether a string can stand as one literal subject token (health subjects such as
 * `sluice.health.<instance>`): not empty, no '.', '*', '>', spaces, tabs, line breaks or NUL.
 * Kept here, not in a connector folder, because health names are not a connector's business.
 */
export function isSubjectToken(token: string): boolean {
  return token.length > 0 && !/[.*> \t\n\r\0]/.test(token);
}

/**
 * The reconnect settings every connector type shares (wait, jitter, max_attempts): by default a
 * gateway never gives up. Each type adds its own description of what happens meanwhile.
 */
export function reconnectFields(maxAttemptsHelp: string) {
  return z.strictObject({
    wait: duration("Base delay between reconnect attempts").default(2000),
    jitter: duration("Random extra delay added to each wait").default(500),
    max_attempts: z.int().min(-1).default(-1).describe(maxAttemptsHelp),
  });
}

/** A client certificate and its key go together: a `tls` refinement shared by connector types. */
export function certificatePair(
  t: { cert_file?: string | undefined; key_file?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((t.cert_file === undefined) !== (t.key_file === undefined)) {
    ctx.addIssue({ code: "custom", message: "cert_file and key_file go together: set both" });
  }
}
