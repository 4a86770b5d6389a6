/**
 * Address templates of sinks — NATS subjects such as `alerts.{site}.temperature`, MQTT topics such
 * as `actuators/{device}/set` — one mechanism for every connector type, which supplies the rules of
 * its addresses ({@link AddressRules}). A template is compiled once when the configuration loads and
 * rendered for every event, so rendering does no parsing and no regular expression work, and splits
 * the received subject only when a `{_tokens[N]}` placeholder needs it.
 *
 * Placeholders:
 * - `{field.path}` takes a value from the decoded JSON event, following a dot path of segments of
 *   `[A-Za-z0-9_-]` characters through nested objects (and arrays, by index).
 * - `{_tokens[N]}` takes token N (0-based) of the subject (or topic) the event arrived on, split by
 *   its source's separator.
 *
 * A placeholder may form a whole token or part of one (`a.{x}-suffix.b`). Braces cannot be written
 * literally.
 *
 * @module
 */

/** What a connector type's addresses allow; the template mechanism is the same for all. */
export interface AddressRules {
  /** What an address is called in messages: "subject", "topic". */
  readonly noun: string;
  /** What one part of it is called: "subject token", "topic level". */
  readonly part: string;
  /** Whether a rendered value may stand as (part of) one token or level. */
  isValidPart(text: string): boolean;
  /** Names a character a token may not contain ("'.'", "a space"), or undefined when allowed. */
  forbidden(c: string): string | undefined;
  /**
   * The first problem of the template's literal text with each placeholder standing as "x": its
   * offset in that text and the reason, or undefined when it is a valid address.
   */
  findProblem(skeleton: string): { offset: number; reason: string } | undefined;
  /** Longest rendered address in UTF-8 bytes, when the protocol bounds it. */
  readonly maxBytes?: number;
}

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

/** A compiled address template, rendered once per event. */
export interface AddressTemplate {
  /** The template as written. */
  readonly source: string;
  /** True when the template has no placeholders (then render returns the literal without work). */
  readonly isStatic: boolean;
  /** True when a placeholder takes a token of the received subject (`{_tokens[N]}`). */
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

const utf8 = new TextEncoder();

/** UTF-8 length of `s` when over `max`; encodes only when its UTF-16 length cannot tell. */
function exceedsBound(s: string, max: number): number | undefined {
  // Each UTF-16 unit encodes to at most 3 bytes.
  if (s.length * 3 <= max) return undefined;
  const bytes = utf8.encode(s).length;
  return bytes > max ? bytes : undefined;
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

/** Explains why a rendered value is not a valid part; only called once `isValidPart` said no. */
function tokenFailure(rules: AddressRules, text: string, value: string): RenderFailure {
  if (value.length === 0) return { failure: `template value ${text} is empty` };
  for (const c of value) {
    const what = rules.forbidden(c);
    if (what !== undefined) {
      return { failure: `template value ${text} ${quote(value)} contains ${what}` };
    }
  }
  return { failure: `template value ${text} ${quote(value)} is not a valid ${rules.part}` };
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

class CompiledTemplate implements AddressTemplate {
  readonly source: string;
  readonly isStatic: boolean;
  readonly #rules: AddressRules;
  /** Literal text around the placeholders: always one more than `#placeholders`. */
  readonly #literals: readonly string[];
  readonly #placeholders: readonly Placeholder[];
  readonly #usesTokens: boolean;

  constructor(
    source: string,
    literals: readonly string[],
    placeholders: readonly Placeholder[],
    rules: AddressRules,
  ) {
    this.source = source;
    this.#rules = rules;
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
      if (!this.#rules.isValidPart(text)) return tokenFailure(this.#rules, placeholder.text, text);
      out += text + (literals[i + 1] as string);
    }
    const max = this.#rules.maxBytes;
    const bytes = max === undefined ? undefined : exceedsBound(out, max);
    if (bytes !== undefined) {
      return {
        failure: `${this.#rules.noun} rendered from template ${
          quote(this.source)
        } is ${bytes} bytes long, more than the ${max} allowed: a template value is too long`,
      };
    }
    return out;
  }
}

/** Compiles the inside of one placeholder, or throws with the offset of its opening brace. */
function compilePlaceholder(
  template: string,
  expression: string,
  offset: number,
  noun: string,
): Placeholder {
  const text = `{${expression}}`;
  const tokenRef = TOKEN_REF.exec(expression);
  if (tokenRef !== null) {
    const index = Number(tokenRef[1]);
    if (!Number.isSafeInteger(index)) {
      throw new TemplateSyntaxError(
        `Token index in '${text}' is too large in ${noun} template ${quote(template)}`,
        offset,
      );
    }
    return { text, path: undefined, index };
  }
  if (!FIELD_PATH.test(expression)) {
    throw new TemplateSyntaxError(
      `Invalid placeholder '${text}' at offset ${offset} in ${noun} template ${
        quote(template)
      }: expected a field path such as '{site}' or '{meta.site}', or '{_tokens[N]}'`,
      offset,
    );
  }
  const path = expression.split(".");
  if (path[0] === TOKENS) {
    throw new TemplateSyntaxError(
      `Placeholder '${text}' at offset ${offset} in ${noun} template ${
        quote(template)
      } needs a token index, e.g. '{_tokens[0]}'`,
      offset,
    );
  }
  return { text, path, index: -1 };
}

/**
 * Compiles a sink address template once, at config load, so every syntax problem is reported
 * with its offset before any event flows and rendering stays cheap.
 *
 * @param template The template as written.
 * @param rules What the connector type's addresses allow.
 * @returns The compiled template.
 * @throws {TemplateSyntaxError} For an unclosed `{`, a `}` without `{`, an empty or malformed
 * placeholder, or literal text that (with each placeholder standing for one token) is not a valid
 * address by `rules`.
 */
export function compileAddressTemplate(template: string, rules: AddressRules): AddressTemplate {
  const noun = rules.noun;
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
        `Unmatched '}' at offset ${i} in ${noun} template ${quote(template)}`,
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
          `Unexpected '{' inside a placeholder at offset ${close} in ${noun} template ${
            quote(template)
          }`,
          close,
        );
      }
      close++;
    }
    if (close === template.length) {
      throw new TemplateSyntaxError(
        `Unclosed '{' at offset ${open} in ${noun} template ${quote(template)}`,
        open,
      );
    }
    if (close === open + 1) {
      throw new TemplateSyntaxError(
        `Empty placeholder '{}' at offset ${open} in ${noun} template ${quote(template)}`,
        open,
      );
    }
    placeholders.push(compilePlaceholder(template, template.slice(open + 1, close), open, noun));
    literals.push(template.slice(literalStart, open));
    skeleton += "x";
    offsets.push(open);
    i = close + 1;
    literalStart = i;
  }
  literals.push(template.slice(literalStart));
  offsets.push(template.length);

  const max = rules.maxBytes;
  const literalBytes = max === undefined ? 0 : utf8.encode(literals.join("")).length;
  if (max !== undefined && literalBytes > max) {
    throw new TemplateSyntaxError(
      `${capitalized(noun)} template ${
        quote(template)
      } is ${literalBytes} bytes long without its placeholders, more than the ${max} allowed`,
      0,
    );
  }
  const problem = rules.findProblem(skeleton);
  if (problem !== undefined) {
    const offset = offsets[problem.offset] ?? template.length;
    throw new TemplateSyntaxError(
      `${capitalized(noun)} template ${quote(template)} is not a valid ${noun}: ${problem.reason}`,
      offset,
    );
  }
  return new CompiledTemplate(template, literals, placeholders, rules);
}

function capitalized(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
