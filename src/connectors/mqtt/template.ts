/**
 * Sink topic templates such as `actuators/{device}/set`: the shared address templates
 * (`src/engine/template.ts`) with MQTT's level rules. A rendered value with `/`, `+`, `#` or NUL,
 * or an empty one, fails the event (it goes to the dead letter).
 *
 * @module
 */
import {
  type AddressRules,
  type AddressTemplate,
  compileAddressTemplate,
} from "../../engine/template.ts";
import { findTopicProblem, isValidLevel } from "./topic.ts";

export { isRenderFailure, type RenderFailure, TemplateSyntaxError } from "../../engine/template.ts";

/** A compiled topic template, rendered once per event. */
export type TopicTemplate = AddressTemplate;

const TOPIC_RULES: AddressRules = {
  noun: "topic",
  part: "topic level",
  isValidPart: isValidLevel,
  forbidden(c) {
    switch (c) {
      case "/":
      case "+":
      case "#":
        return `'${c}'`;
      case "\0":
        return "a NUL character";
      default:
        return undefined;
    }
  },
  findProblem: (skeleton) => findTopicProblem(skeleton, { wildcards: false, emptyLevels: false }),
};

/**
 * Compiles a sink topic template once, at config load.
 *
 * @param template The template as written.
 * @returns The compiled template.
 * @throws {TemplateSyntaxError} When it is malformed or not a valid topic without wildcards and
 * empty levels.
 */
export function compileTemplate(template: string): TopicTemplate {
  return compileAddressTemplate(template, TOPIC_RULES);
}
