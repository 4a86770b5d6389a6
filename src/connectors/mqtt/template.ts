/**
 * Sink topic templates such as `actuators/{device}/set`: the NATS connector's subject templates
 * (same placeholders, same compile-once design) with MQTT's level rules. Kept as a copy in this
 * folder because nothing outside a connector folder may import from another one.
 *
 * Placeholders:
 * - `{field.path}` takes a value from the decoded JSON event, following a dot path of segments of
 *   `[A-Za-z0-9_-]` characters through nested objects (and arrays, by index).
 * - `{_tokens[N]}` takes token N (0-based) of the source subject or topic, split by the source's
 *   separator (`.` for a NATS source, `/` for an MQTT source).
 *
 * A placeholder may form a whole level or part of one (`a/{x}-suffix/b`). A rendered value with
 * `/`, `+`, `#` or NUL, or an empty one, fails the event (it goes to the dead letter). Braces
 * cannot be written literally.
 *
 * @module
 */

import { findTopicProblem, isValidLevel } from "./topic.ts";

/** A template that cannot be compiled; `offset` lets the config loader point at the character. */
export class TemplateSyntaxError extends SyntaxError {
  /** Stable code: "template_syntax". */
  readonly code = "template_syntax";
  /** 0-based offset in the template string where the problem starts. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.name = "TemplateSyntaxError";
    this.offset = offset;
  }
}

/** Why one event could not be given a topic, carried as a value so the engine can dead-letter it. */
export interface RenderFailure {
  /** Short lower-case reason, e.g. `template value {site} is missing`. */
  readonly failure: string;
}

/** A compiled topic template, rendered once per event. */
export interface TopicTemplate {
  /** The template as written. */
  readonly source: string;
  /** True when the template has no placeholders (then render returns the literal without work). */
  readonly isStatic: boolean;
  /**
   * Renders the topic for an event received on `subject`, whose tokens are separated by
   * `separator`. Returns the topic, or a RenderFailure when a value is missing or not a valid
   * level. Never throws.
   */
  render(event: unknown, subject: string, separator: string): string | RenderFailure;
}

/** Tells a render result apart without a cast, so the hot path stays a single `typeof` check. */
export function isRenderFailure(v: string | RenderFailure): v is RenderFailure {
  return typeof v !== "string";
}

const FIELD_PATH = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const TOKEN_REF = /^_tokens\[(\d+)\]$/;
const TOKENS = "_tokens";
const MAX_QUOTED = 64;

/** One compiled placeholder: a path into the event or an index into the source's tokens. */
interface Placeholder {
  /** The placeholder as written, braces included, for failure messages. */
  readonly text: string;
  /** Path segments into the event; undefined for a `_tokens[N]` placeholder. */
  readonly path: readonly string[] | undefined;
  /** Token index for a `_tokens[N]` placeholder; -1 for a field path. */
  readonly index: number;
}

/** Quotes a value for a failure message, shortened so a huge field cannot bloat a dead letter. */
function quote(value: string): string {
  const shown = value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value;
  return JSON.stringify(shown);
}

/** Names a character a topic level may not contain, or undefined for an allowed one. */
function forbidden(c: string): string | undefined {
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
}

/** Explains why a rendered value is not a valid level; only called once `isValidLevel` said no. */
function tokenFailure(text: string, value: string): RenderFailure {
  if (value.length === 0) return { failure: `template value ${text} is empty` };
  for (const c of value) {
    const what = forbidden(c);
    if (what !== undefined) {
      return { failure: `template value ${text} ${quote(value)} contains ${what}` };
    }
  }
  return { failure: `template value ${text} ${quote(value)} is not a valid topic level` };
}

/** Names the JSON type of a value that cannot be rendered. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Follows `path` through `event`, own properties only, so `{constructor}` is missing, not a function. */
function lookup(event: unknown, path: readonly string[]): unknown {
  let value = event;
  for (let i = 0; i < path.length; i++) {
    if (typeof value !== "object" || value === null) return undefined;
    const key = path[i] as string;
    if (!Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

class CompiledTemplate implements TopicTemplate {
  readonly source: string;
  readonly isStatic: boolean;
  /** Literal text around the placeholders: always one more than `#placeholders`. */
  readonly #literals: readonly string[];
  readonly #placeholders: readonly Placeholder[];
  readonly #usesTokens: boolean;

  constructor(source: string, literals: readonly string[], placeholders: readonly Placeholder[]) {
    this.source = source;
    this.isStatic = placeholders.length === 0;
    this.#literals = literals;
    this.#placeholders = placeholders;
    this.#usesTokens = placeholders.some((p) => p.path === undefined);
  }

  render(event: unknown, subject: string, separator: string): string | RenderFailure {
    if (this.isStatic) return this.source;
    try {
      return this.#render(event, subject, separator);
    } catch (error) {
      // Only exotic events (proxies, throwing getters) get here; JSON.parse output never does.
      const reason = error instanceof Error ? error.message : String(error);
      return { failure: `template ${quote(this.source)} could not be rendered: ${reason}` };
    }
  }

  #render(event: unknown, subject: string, separator: string): string | RenderFailure {
    const literals = this.#literals;
    const placeholders = this.#placeholders;
    const tokens = this.#usesTokens ? subject.split(separator) : undefined;
    let out = literals[0] as string;
    for (let i = 0; i < placeholders.length; i++) {
      const placeholder = placeholders[i] as Placeholder;
      const path = placeholder.path;
      let value: unknown;
      if (path === undefined) {
        value = (tokens as string[])[placeholder.index];
        if (value === undefined) {
          const count = (tokens as string[]).length;
          return {
            failure: `template value ${placeholder.text} is missing: source subject ${
              quote(subject)
            } has ${count} token${count === 1 ? "" : "s"}`,
          };
        }
      } else {
        value = lookup(event, path);
        if (value === undefined) {
          return typeof event === "object" && event !== null
            ? { failure: `template value ${placeholder.text} is missing` }
            : {
              failure: `template value ${placeholder.text} is missing: the event is ${
                describe(event)
              }, not a JSON object`,
            };
        }
      }
      let text: string;
      switch (typeof value) {
        case "string":
          text = value;
          break;
        case "number":
        case "boolean":
          text = String(value);
          break;
        default:
          return {
            failure: `template value ${placeholder.text} is ${
              describe(value)
            }, not a string, number or boolean`,
          };
      }
      if (!isValidLevel(text)) return tokenFailure(placeholder.text, text);
      out += text + (literals[i + 1] as string);
    }
    return out;
  }
}

/** Compiles the inside of one placeholder, or throws with the offset of its opening brace. */
function compilePlaceholder(template: string, expression: string, offset: number): Placeholder {
  const text = `{${expression}}`;
  const tokenRef = TOKEN_REF.exec(expression);
  if (tokenRef !== null) {
    const index = Number(tokenRef[1]);
    if (!Number.isSafeInteger(index)) {
      throw new TemplateSyntaxError(
        `Token index in '${text}' is too large in topic template ${quote(template)}`,
        offset,
      );
    }
    return { text, path: undefined, index };
  }
  if (!FIELD_PATH.test(expression)) {
    throw new TemplateSyntaxError(
      `Invalid placeholder '${text}' at offset ${offset} in topic template ${
        quote(template)
      }: expected a field path such as '{site}' or '{meta.site}', or '{_tokens[N]}'`,
      offset,
    );
  }
  const path = expression.split(".");
  if (path[0] === TOKENS) {
    throw new TemplateSyntaxError(
      `Placeholder '${text}' at offset ${offset} in topic template ${
        quote(template)
      } needs a token index, e.g. '{_tokens[0]}'`,
      offset,
    );
  }
  return { text, path, index: -1 };
}

/**
 * Compiles a sink topic template once, at config load, so every syntax problem is reported with
 * its offset before any event flows and rendering stays cheap.
 *
 * Throws TemplateSyntaxError for an unclosed `{`, a `}` without `{`, an empty or malformed
 * placeholder, or literal text that (with each placeholder standing for one level) is not a valid
 * topic without wildcards and empty levels.
 */
export function compileTemplate(template: string): TopicTemplate {
  const literals: string[] = [];
  const placeholders: Placeholder[] = [];
  // The template with each placeholder replaced by "x", and for each of its offsets (plus the end)
  // the matching template offset, so topic problems can be reported against the template.
  let skeleton = "";
  const offsets: number[] = [];
  let literalStart = 0;
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c === "}") {
      throw new TemplateSyntaxError(
        `Unmatched '}' at offset ${i} in topic template ${quote(template)}`,
        i,
      );
    }
    if (c !== "{") {
      skeleton += c;
      offsets.push(i);
      i++;
      continue;
    }
    const open = i;
    let close = open + 1;
    while (close < template.length && template[close] !== "}") {
      if (template[close] === "{") {
        throw new TemplateSyntaxError(
          `Unexpected '{' inside a placeholder at offset ${close} in topic template ${
            quote(template)
          }`,
          close,
        );
      }
      close++;
    }
    if (close === template.length) {
      throw new TemplateSyntaxError(
        `Unclosed '{' at offset ${open} in topic template ${quote(template)}`,
        open,
      );
    }
    if (close === open + 1) {
      throw new TemplateSyntaxError(
        `Empty placeholder '{}' at offset ${open} in topic template ${quote(template)}`,
        open,
      );
    }
    placeholders.push(compilePlaceholder(template, template.slice(open + 1, close), open));
    literals.push(template.slice(literalStart, open));
    skeleton += "x";
    offsets.push(open);
    i = close + 1;
    literalStart = i;
  }
  literals.push(template.slice(literalStart));
  offsets.push(template.length);

  const problem = findTopicProblem(skeleton, { wildcards: false, emptyLevels: false });
  if (problem !== undefined) {
    const offset = offsets[problem.offset] ?? template.length;
    throw new TemplateSyntaxError(
      `Topic template ${quote(template)} is not a valid topic: ${problem.reason}`,
      offset,
    );
  }
  return new CompiledTemplate(template, literals, placeholders);
}
