/**
 * Sink subject templates such as `alerts.{site}.temperature`. A template is compiled once when the
 * configuration loads and rendered for every event, so rendering does no parsing and no regular
 * expression work, and splits the source subject only when a `{_tokens[N]}` placeholder needs it.
 *
 * Placeholders:
 * - `{field.path}` takes a value from the decoded JSON event, following a dot path of segments of
 *   `[A-Za-z0-9_-]` characters through nested objects (and arrays, by index).
 * - `{_tokens[N]}` takes token N (0-based) of the source subject.
 *
 * A placeholder may form a whole token or part of one (`a.{x}-suffix.b`). Braces cannot be written
 * literally.
 *
 * @module
 */

import { findSubjectProblem, isValidToken } from "./subject.ts";

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

/** Why one event could not be given a subject, carried as a value so the engine can dead-letter it. */
export interface RenderFailure {
  /** Short lower-case reason, e.g. `template value {site} is missing`. */
  readonly failure: string;
}

/** A compiled subject template, rendered once per event. */
export interface SubjectTemplate {
  /** The template as written. */
  readonly source: string;
  /** True when the template has no placeholders (then render returns the literal without work). */
  readonly isStatic: boolean;
  /** True when a placeholder takes a token of the received subject (`{1}`). */
  readonly usesAddress: boolean;
  /**
   * Renders the subject for an event received on `subject` (tokens separated by `separator`,
   * "." by default; "/" for an MQTT topic). Returns the subject string, or a
   * RenderFailure when a value is missing or not a valid token. Never throws.
   */
  render(event: unknown, subject: string, separator?: string): string | RenderFailure;
}

/** Tells a render result apart without a cast, so the hot path stays a single `typeof` check. */
export function isRenderFailure(v: string | RenderFailure): v is RenderFailure {
  return typeof v !== "string";
}

/**
 * Longest subject a template may render, in UTF-8 bytes. nats-server refuses a protocol line
 * longer than its `max_control_line` (4096 bytes by default) and then closes the connection that
 * sent it, with every pipeline sharing it; a PUB/HPUB line carries the subject, a reply subject
 * and two sizes besides. 1024 bytes leave room for those, also on a server configured with a
 * quarter of the default, and are far beyond any subject a fleet uses. A longer rendered subject
 * is a template failure: the event is dead-lettered, the connection stays up.
 */
export const MAX_SUBJECT_BYTES = 1024;

const utf8 = new TextEncoder();

/** UTF-8 length of `s` when over the bound; encodes only when its UTF-16 length cannot tell. */
function exceedsSubjectBound(s: string): number | undefined {
  // Each UTF-16 unit encodes to at most 3 bytes.
  if (s.length * 3 <= MAX_SUBJECT_BYTES) return undefined;
  const bytes = utf8.encode(s).length;
  return bytes > MAX_SUBJECT_BYTES ? bytes : undefined;
}

const FIELD_PATH = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const TOKEN_REF = /^_tokens\[(\d+)\]$/;
const TOKENS = "_tokens";
const MAX_QUOTED = 64;

/** One compiled placeholder: either a path into the event or an index into the source subject. */
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

/** Names a character a token may not contain, or undefined for an allowed one. */
function forbidden(c: string): string | undefined {
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
}

/** Explains why a rendered value is not a valid token; only called once `isValidToken` said no. */
function tokenFailure(text: string, value: string): RenderFailure {
  if (value.length === 0) return { failure: `template value ${text} is empty` };
  for (const c of value) {
    const what = forbidden(c);
    if (what !== undefined) {
      return { failure: `template value ${text} ${quote(value)} contains ${what}` };
    }
  }
  return { failure: `template value ${text} ${quote(value)} is not a valid subject token` };
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

class CompiledTemplate implements SubjectTemplate {
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

  get usesAddress(): boolean {
    return this.#usesTokens;
  }

  render(event: unknown, subject: string, separator = "."): string | RenderFailure {
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
    // The source's separator: "." for a NATS subject, "/" for an MQTT topic.
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
            failure: `template value ${placeholder.text} is missing: subject ${
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
      if (!isValidToken(text)) return tokenFailure(placeholder.text, text);
      out += text + (literals[i + 1] as string);
    }
    const bytes = exceedsSubjectBound(out);
    if (bytes !== undefined) {
      return {
        failure: `subject rendered from template ${
          quote(this.source)
        } is ${bytes} bytes long, more than the ${MAX_SUBJECT_BYTES} allowed: a template value is too long`,
      };
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
        `Token index in '${text}' is too large in subject template ${quote(template)}`,
        offset,
      );
    }
    return { text, path: undefined, index };
  }
  if (!FIELD_PATH.test(expression)) {
    throw new TemplateSyntaxError(
      `Invalid placeholder '${text}' at offset ${offset} in subject template ${
        quote(template)
      }: expected a field path such as '{site}' or '{meta.site}', or '{_tokens[N]}'`,
      offset,
    );
  }
  const path = expression.split(".");
  if (path[0] === TOKENS) {
    throw new TemplateSyntaxError(
      `Placeholder '${text}' at offset ${offset} in subject template ${
        quote(template)
      } needs a token index, e.g. '{_tokens[0]}'`,
      offset,
    );
  }
  return { text, path, index: -1 };
}

/**
 * Compiles a sink subject template once, at config load, so every syntax problem is reported
 * with its offset before any event flows and rendering stays cheap.
 *
 * Throws TemplateSyntaxError for an unclosed `{`, a `}` without `{`, an empty or malformed
 * placeholder, or literal text that (with each placeholder standing for one token) is not a valid
 * subject without wildcards.
 */
export function compileTemplate(template: string): SubjectTemplate {
  const literals: string[] = [];
  const placeholders: Placeholder[] = [];
  // The template with each placeholder replaced by "x", and for each of its offsets (plus the end)
  // the matching template offset, so subject problems can be reported against the template.
  let skeleton = "";
  const offsets: number[] = [];
  let literalStart = 0;
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c === "}") {
      throw new TemplateSyntaxError(
        `Unmatched '}' at offset ${i} in subject template ${quote(template)}`,
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
          `Unexpected '{' inside a placeholder at offset ${close} in subject template ${
            quote(template)
          }`,
          close,
        );
      }
      close++;
    }
    if (close === template.length) {
      throw new TemplateSyntaxError(
        `Unclosed '{' at offset ${open} in subject template ${quote(template)}`,
        open,
      );
    }
    if (close === open + 1) {
      throw new TemplateSyntaxError(
        `Empty placeholder '{}' at offset ${open} in subject template ${quote(template)}`,
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

  const literalBytes = utf8.encode(literals.join("")).length;
  if (literalBytes > MAX_SUBJECT_BYTES) {
    throw new TemplateSyntaxError(
      `Subject template ${
        quote(template)
      } is ${literalBytes} bytes long without its placeholders, more than the ${MAX_SUBJECT_BYTES} allowed`,
      0,
    );
  }
  const problem = findSubjectProblem(skeleton, { wildcards: false });
  if (problem !== undefined) {
    const offset = offsets[problem.offset] ?? template.length;
    throw new TemplateSyntaxError(
      `Subject template ${quote(template)} is not a valid subject: ${problem.reason}`,
      offset,
    );
  }
  return new CompiledTemplate(template, literals, placeholders);
}
