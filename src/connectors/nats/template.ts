/**
 * Sink subject templates such as `alerts.{site}.temperature`: the shared address templates
 * (`src/engine/template.ts`) with NATS's subject rules — tokens without `.`, `*`, `>` or white
 * space, and a bound on the rendered length.
 *
 * @module
 */
import {
  type AddressRules,
  type AddressTemplate,
  compileAddressTemplate,
} from "../../engine/template.ts";
import { findSubjectProblem, isValidToken } from "./subject.ts";

export { isRenderFailure, type RenderFailure, TemplateSyntaxError } from "../../engine/template.ts";

/** A compiled subject template, rendered once per event. */
export type SubjectTemplate = AddressTemplate;

/**
 * Longest subject a template may render, in UTF-8 bytes. nats-server refuses a protocol line
 * longer than its `max_control_line` (4096 bytes by default) and then closes the connection that
 * sent it, with every pipeline sharing it; a PUB/HPUB line carries the subject, a reply subject
 * and two sizes besides. 1024 bytes leave room for those, also on a server configured with a
 * quarter of the default, and are far beyond any subject a fleet uses. A longer rendered subject
 * is a template failure: the event is dead-lettered, the connection stays up.
 */
export const MAX_SUBJECT_BYTES = 1024;

const SUBJECT_RULES: AddressRules = {
  noun: "subject",
  part: "subject token",
  isValidPart: isValidToken,
  forbidden(c) {
    switch (c) {
      case ".":
      case "*":
      case ">":
        return `'${c}'`;
      case " ":
        return "a space";
      case "\t":
        return "a tab";
      case "\n":
      case "\r":
        return "a line break";
      case "\0":
        return "a NUL character";
      default:
        return undefined;
    }
  },
  findProblem: (skeleton) => findSubjectProblem(skeleton, { wildcards: false }),
  maxBytes: MAX_SUBJECT_BYTES,
};

/**
 * Compiles a sink subject template once, at config load.
 *
 * @param template The template as written.
 * @returns The compiled template.
 * @throws {TemplateSyntaxError} When it is malformed or not a valid subject without wildcards.
 */
export function compileTemplate(template: string): SubjectTemplate {
  return compileAddressTemplate(template, SUBJECT_RULES);
}
