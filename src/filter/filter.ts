/**
 * CEL filters over decoded events. An expression is parsed and type-checked once by
 * {@linkcode compileFilter}; {@linkcode Filter.matches} then runs per event without reparsing.
 *
 * What an expression can name:
 *
 * - the top-level fields of a JSON object event, as variables: `temperature > 30 && site == "a"`;
 * - `event`, the whole decoded payload, also when it is not an object, and for field names that
 *   are not identifiers: `event["odd-key"]`;
 * - `_subject` (string), `_tokens` (list of the subject's tokens) and `_headers` (map of header
 *   name to its first value; empty when the message has no headers).
 *
 * `event`, `_subject`, `_tokens` and `_headers` are reserved: they win over event fields of the
 * same name. A field the event does not have is an evaluation error, and so the event does not
 * pass; use `has(event.field)` to test for optional fields.
 *
 * One event must not stall the process (docs/expressions.md): `matches` is RE2 in linear time
 * (re2.ts), and an expression whose cost may grow faster than the event size is refused when
 * compiled (cost.ts); the pipeline bounds the event size. Objects with a `constructor` key, which
 * cel-js cannot read, are handed to it as Maps (cel_view.ts).
 *
 * @example Usage
 * ```ts
 * import { compileFilter } from "./filter.ts";
 *
 * const hot = compileFilter('temperature > 30 && _tokens[1] == "site-a"');
 * hot.matches({ temperature: 30.5 }, { subject: "sensors.site-a", headers: undefined }); // true
 * ```
 *
 * @module
 */

import { Environment } from "cel";
import { costProblem } from "./cost.ts";
import { celView } from "./cel_view.ts";
import {
  compileConstantPattern,
  PatternError,
  registerRe2,
  requireRe2,
  rewriteMatches,
  unrenamed,
} from "./re2.ts";

/** Headers as nats.js MsgHdrs exposes them (structural, so no nats import is needed). */
export interface HeaderSource {
  /** Names of the headers present. */
  keys(): string[];
  /** First value of the header `name`. */
  get(name: string): string;
}

/** What a filter may see of a message besides its payload. */
export interface EventMeta {
  /** Subject the message arrived on. */
  subject: string;
  /** Message headers, or `undefined` when the message has none. */
  headers?: HeaderSource | undefined;
}

/**
 * An expression that cannot be used as a filter. Thrown at compile time, so a bad filter stops a
 * pipeline from starting instead of dropping every event.
 */
export class FilterCompileError extends SyntaxError {
  /** Stable code: "filter_syntax" when the expression does not parse, "filter_type" when it does
   * not type-check or does not return a bool, "filter_regex" when a literal `matches` pattern is
   * not valid RE2, "filter_cost" when its cost may grow faster than the event size. */
  readonly code: FilterCompileCode;
  /** 0-based character offset into the expression where the problem is. */
  readonly offset: number;

  constructor(
    message: string,
    code: FilterCompileCode,
    offset: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "FilterCompileError";
    this.code = code;
    this.offset = offset;
  }
}

/** Why an expression cannot be used: see {@linkcode FilterCompileError.code}. */
export type FilterCompileCode = "filter_syntax" | "filter_type" | "filter_regex" | "filter_cost";

/**
 * An event the filter could not evaluate, e.g. because a field it names is missing. Such an event
 * does not pass; the message is one short line, fit for a log or a dead-letter header.
 */
export class FilterEvalError extends Error {
  /** Stable code: "filter_eval". */
  readonly code = "filter_eval";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FilterEvalError";
  }
}

/** Options of {@linkcode compileExpression} and {@linkcode compileFilter}. */
export interface ExpressionOptions {
  /**
   * Separator of the address levels that `_tokens` lists: "." for NATS subjects, "/" for MQTT
   * topics. The source's connector type declares it.
   * @default {"."}
   */
  separator?: string;
}

/** A compiled CEL expression that yields any value (map fields, dedupe keys, aggregates). */
export interface Expression {
  /** The expression as written. */
  readonly expression: string;
  /** The result type the checker derived: "dyn" when it depends on the event, else e.g. "string". */
  readonly type: string;
  /**
   * The value of the expression for one event, as CEL returns it (ints are bigints). Throws
   * FilterEvalError when evaluation fails.
   */
  evaluate(event: unknown, meta: EventMeta): unknown;
}

/** A compiled filter expression. */
export interface Filter {
  /** The expression as written. */
  readonly expression: string;
  /** True when the event passes. Throws FilterEvalError when evaluation fails. */
  matches(event: unknown, meta: EventMeta): boolean;
}

/**
 * Parse and type-check `expression` once, for evaluation against many events.
 *
 * @example Usage
 * ```ts
 * import { compileFilter } from "./filter.ts";
 *
 * const f = compileFilter('reading.temp > 3 && "X-Site" in _headers');
 * f.expression; // 'reading.temp > 3 && "X-Site" in _headers'
 * ```
 *
 * @param expression A CEL expression that evaluates to a bool.
 * @param options Where `_tokens` splits the address.
 * @returns The compiled filter.
 * @throws {FilterCompileError} When the expression does not parse, does not type-check, or its
 * result type is known and is not `bool`.
 * @throws {Re2NotLoaded} When it calls `matches` before `loadRe2` (re2.ts).
 */
export function compileFilter(expression: string, options: ExpressionOptions = {}): Filter {
  const { program, type } = parseChecked(expression);
  if (type !== "bool" && type !== "dyn") {
    throw new FilterCompileError(`filter must return a bool, got ${type}`, "filter_type", 0);
  }
  return new CelFilter(
    new CelExpression(expression, program, type, options),
    shortcut(program.ast),
  );
}

/**
 * Parse and type-check a CEL expression of any result type once, for evaluation against many
 * events.
 *
 * @example Usage
 * ```ts
 * import { compileExpression } from "./filter.ts";
 *
 * const kw = compileExpression("kwh * 4.0");
 * kw.evaluate({ kwh: 2 }, { subject: "meters.a" }); // 8
 * ```
 *
 * @param expression A CEL expression.
 * @param options Where `_tokens` splits the address.
 * @returns The compiled expression.
 * @throws {FilterCompileError} When the expression does not parse or does not type-check.
 * @throws {Re2NotLoaded} When it calls `matches` before `loadRe2` (re2.ts).
 */
export function compileExpression(expression: string, options: ExpressionOptions = {}): Expression {
  const { program, type } = parseChecked(expression);
  return new CelExpression(expression, program, type, options);
}

// Module-private below.

/** The parts of a cel-js parse result used here; its own types put `any` in the way. */
interface Program {
  (context: Record<string, unknown>): unknown;
  readonly ast: unknown;
  check(): { valid: boolean; type?: string; error?: unknown };
}

function parseChecked(expression: string): { program: Program; type: string } {
  let program: Program;
  let patterns;
  try {
    program = env.parse(expression) as Program;
    // Before checking: the check binds each call to its function.
    patterns = rewriteMatches(program.ast);
  } catch (err) {
    throw new FilterCompileError(summary(err), "filter_syntax", offsetOf(err), { cause: err });
  }
  // Checking now caches the types in the AST, so evaluation does not check again per event.
  const checked = program.check();
  if (!checked.valid) {
    throw new FilterCompileError(summary(checked.error), "filter_type", offsetOf(checked.error), {
      cause: checked.error,
    });
  }
  if (patterns.calls > 0) requireRe2();
  for (const { pattern, offset } of patterns.literals) {
    try {
      compileConstantPattern(pattern);
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      throw new FilterCompileError(err.message, "filter_regex", offset, { cause: err });
    }
  }
  const cost = costProblem(program.ast);
  if (cost !== undefined) {
    const growth = cost.degree === 2
      ? "the square of the event size"
      : `the event size to the power ${cost.degree}`;
    throw new FilterCompileError(
      `evaluation time may grow with ${growth}: a comprehension over event data, or an ` +
        "operation on a whole list or string of the event, inside a comprehension over event " +
        "data; one large event could stall the process (see docs/expressions.md)",
      "filter_cost",
      cost.offset,
    );
  }
  return { program, type: checked.type ?? "dyn" };
}

// Creating an Environment is costly; one serves every expression, as it holds no per-expression
// state. Undeclared variables are dyn because event fields are not known in advance; mixed literals
// such as `[1, 2.5]` are allowed because JSON numbers are doubles while CEL literals may be ints.
// `matches` is RE2's (linear time), not cel-js's backtracking RegExp.
const env = new Environment({
  unlistedVariablesAreDyn: true,
  homogeneousAggregateLiterals: false,
});
registerRe2(env);

const EMPTY_HEADERS: ReadonlyMap<string, string> = new Map();

class CelExpression implements Expression {
  readonly expression: string;
  readonly type: string;
  readonly #program: Program;
  /** Reused per event: cel-js reads variables with `ctx[name]`, so no prototype may answer. */
  readonly #ctx: Record<string, unknown> = Object.create(null);
  readonly #event: boolean;
  readonly #subject: boolean;
  readonly #tokens: boolean;
  readonly #headers: boolean;
  readonly #separator: string;
  /** Names the expression uses that are read from the event's own fields. */
  readonly #fields: readonly string[];
  /** Reads the value directly for the commonest shapes (`field`, `a.b`, `_tokens[N]`). */
  readonly #direct: Direct | undefined;
  // Messages of a subscription often share a subject; splitting it again costs more than comparing.
  #lastSubject = "";
  #lastTokens: readonly string[] = [""];

  constructor(expression: string, program: Program, type: string, options: ExpressionOptions) {
    const names = identifiers(program.ast);
    this.expression = expression;
    this.type = type;
    this.#program = program;
    this.#event = names.has("event");
    this.#subject = names.has("_subject");
    this.#tokens = names.has("_tokens");
    this.#headers = names.has("_headers");
    this.#separator = options.separator ?? ".";
    this.#fields = [...names].filter((n) => !RESERVED.has(n));
    this.#direct = direct(program.ast, (subject) => this.#tokensOf(subject));
  }

  evaluate(event: unknown, meta: EventMeta): unknown {
    if (this.#direct !== undefined) {
      const value = this.#direct(event, meta);
      if (value !== undefined) return value;
    }
    const ctx = this.#ctx;
    if (this.#event) ctx.event = event;
    if (this.#subject) ctx._subject = meta.subject;
    if (this.#tokens) ctx._tokens = this.#tokensOf(meta.subject);
    if (this.#headers) ctx._headers = headerMap(meta.headers);
    this.#fill(event);
    try {
      return this.#program(ctx);
    } catch (err) {
      return this.#retry(event, err);
    }
  }

  /** Sets every field the expression reads, so nothing is left over from the previous event. */
  #fill(event: unknown): void {
    const fields = this.#fields;
    if (fields.length === 0) return;
    const ctx = this.#ctx;
    if (event instanceof Map) {
      for (let i = 0; i < fields.length; i++) ctx[fields[i]!] = event.get(fields[i]!);
      return;
    }
    const obj = typeof event === "object" && event !== null && !Array.isArray(event)
      ? event as Record<string, unknown>
      : undefined;
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i]!;
      ctx[name] = obj !== undefined && Object.hasOwn(obj, name) ? obj[name] : undefined;
    }
  }

  /**
   * Evaluates once more when the event holds objects cel-js misreads, else explains the failure.
   * cel-js tells maps from its own types by their `.constructor`, so an object with a
   * `constructor` key is "Unsupported type" to it; such events are rare, and looking for them only
   * after a failure keeps the common path free of a scan of every event.
   */
  #retry(event: unknown, err: unknown): unknown {
    let view: unknown;
    try {
      view = celView(event);
    } catch {
      view = event; // nested too deep to copy: report the original error
    }
    if (view !== event) {
      if (this.#event) this.#ctx.event = view;
      this.#fill(view);
      try {
        return this.#program(this.#ctx);
      } catch (again) {
        err = again;
      }
    }
    throw new FilterEvalError(this.#explain(event, err), { cause: err });
  }

  #explain(event: unknown, err: unknown): string {
    const message = summary(err);
    const notObject = typeof event !== "object" || event === null || Array.isArray(event);
    const unknown = /^Unknown variable: (\S+)/.exec(message);
    if (notObject && unknown !== null && this.#fields.includes(unknown[1]!)) {
      const kind = celTypeOf(event);
      const how = kind === "list" ? "event[0], event.exists(e, ...)" : "event";
      return `the event is a ${kind}, not an object: field '${unknown[1]}' cannot be read; ` +
        `use ${how}`;
    }
    return message;
  }

  #tokensOf(subject: string): readonly string[] {
    if (subject !== this.#lastSubject) {
      this.#lastTokens = subject.split(this.#separator);
      this.#lastSubject = subject;
    }
    return this.#lastTokens;
  }
}

class CelFilter implements Filter {
  readonly expression: string;
  readonly #inner: CelExpression;
  /** Decides the common numeric comparisons without the interpreter, when it can. */
  readonly #shortcut: Shortcut | undefined;

  constructor(inner: CelExpression, shortcut: Shortcut | undefined) {
    this.expression = inner.expression;
    this.#inner = inner;
    this.#shortcut = shortcut;
  }

  matches(event: unknown, meta: EventMeta): boolean {
    if (this.#shortcut !== undefined) {
      const obj = typeof event === "object" && event !== null && !Array.isArray(event)
        ? event as Record<string, unknown>
        : undefined;
      const decided = this.#shortcut(obj);
      if (decided !== undefined) return decided;
    }
    const result = this.#inner.evaluate(event, meta);
    if (typeof result !== "boolean") {
      throw new FilterEvalError(`filter must return a bool, got ${celTypeOf(result)}`);
    }
    return result;
  }
}

/**
 * The value of an expression read straight from the event, or undefined when it cannot be (a
 * missing field, a token out of range, an event that is not a plain object): the interpreter then
 * evaluates it, errors included. Only shapes whose value CEL returns unchanged are read: a field
 * (`temperature`), a field of a field (`reading.temp`) and a subject token (`_tokens[1]`), the
 * usual keys and values of dedupe, throttle and window, where the interpreter cost most.
 */
type Direct = (event: unknown, meta: EventMeta) => unknown;

function direct(
  ast: unknown,
  tokensOf: (subject: string) => readonly string[],
): Direct | undefined {
  const node = ast as Node;
  const own = (obj: unknown, name: string): unknown =>
    typeof obj === "object" && obj !== null && !Array.isArray(obj) && !(obj instanceof Map) &&
      Object.hasOwn(obj, name)
      ? (obj as Record<string, unknown>)[name]
      : undefined;
  const name = fieldName(node);
  if (name !== undefined) return (event) => own(event, name);
  if (node.op === "." && Array.isArray(node.args)) {
    const [inner, key] = node.args as [Node, unknown];
    const outer = fieldName(inner);
    if (outer !== undefined && typeof key === "string") {
      return (event) => own(own(event, outer), key);
    }
  }
  if (node.op === "[]" && Array.isArray(node.args)) {
    const [list, index] = node.args as [Node, Node];
    if (list?.op === "id" && list.args === "_tokens" && index?.op === "value") {
      const i = index.args;
      if (typeof i === "bigint" && i >= 0n && i < 1000n) {
        const n = Number(i);
        return (_event, meta) => tokensOf(meta.subject)[n];
      }
    }
  }
  return undefined;
}

const RESERVED: ReadonlySet<string> = new Set(["event", "_subject", "_tokens", "_headers"]);

/**
 * A filter evaluated directly in JavaScript: the boolean CEL would return, or undefined when it
 * cannot tell (a field is missing or not a number), and then the interpreter decides, errors
 * included. Only what gives the same result as CEL is compiled: constants, `&&`, `||` and `!`
 * over comparisons of a top-level field with a number literal; on numbers these never fail, so
 * CEL's error rules for `&&` and `||` do not come into play.
 */
type Shortcut = (event: Record<string, unknown> | undefined) => boolean | undefined;

const COMPARISONS: ReadonlySet<string> = new Set(["<", "<=", ">", ">="]);
const MIRRORED: Readonly<Record<string, string>> = { "<": ">", "<=": ">=", ">": "<", ">=": "<=" };

/** A cel-js AST node. */
interface Node {
  op?: unknown;
  args?: unknown;
}

/** The value of a number literal (a double, a safe int, or either negated), else undefined. */
function numberLiteral(node: Node): number | undefined {
  if (node.op === "-_") {
    const inner = numberLiteral(node.args as Node);
    return inner === undefined ? undefined : -inner;
  }
  if (node.op !== "value") return undefined;
  const v = node.args;
  if (typeof v === "number") return v;
  if (typeof v === "bigint" && v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER) {
    return Number(v);
  }
  return undefined;
}

/** A field name that the filter reads from the event (not a reserved name). */
function fieldName(node: Node): string | undefined {
  return node.op === "id" && typeof node.args === "string" && !RESERVED.has(node.args)
    ? node.args
    : undefined;
}

function compare(op: string, name: string, limit: number): Shortcut {
  const read = (e: Record<string, unknown> | undefined) =>
    e !== undefined && Object.hasOwn(e, name) ? e[name] : undefined;
  switch (op) {
    case "<":
      return (e) => {
        const v = read(e);
        return typeof v === "number" ? v < limit : undefined;
      };
    case "<=":
      return (e) => {
        const v = read(e);
        return typeof v === "number" ? v <= limit : undefined;
      };
    case ">":
      return (e) => {
        const v = read(e);
        return typeof v === "number" ? v > limit : undefined;
      };
    default:
      return (e) => {
        const v = read(e);
        return typeof v === "number" ? v >= limit : undefined;
      };
  }
}

/** Compiles the part of `ast` a {@link Shortcut} can decide, or returns undefined. */
function shortcut(ast: unknown): Shortcut | undefined {
  if (typeof ast !== "object" || ast === null) return undefined;
  const node = ast as Node;
  const op = node.op;
  if (op === "value" && typeof node.args === "boolean") {
    const constant = node.args;
    return () => constant;
  }
  if (typeof op !== "string" || !Array.isArray(node.args)) {
    return op === "!_" ? not(shortcut(node.args)) : undefined;
  }
  const [left, right] = node.args as [Node, Node];
  if (typeof left !== "object" || left === null || typeof right !== "object" || right === null) {
    return undefined;
  }
  if (COMPARISONS.has(op)) {
    const lName = fieldName(left);
    const rNumber = numberLiteral(right);
    if (lName !== undefined && rNumber !== undefined) return compare(op, lName, rNumber);
    const rName = fieldName(right);
    const lNumber = numberLiteral(left);
    if (rName !== undefined && lNumber !== undefined) return compare(MIRRORED[op]!, rName, lNumber);
    return undefined;
  }
  if (op === "&&" || op === "||") {
    const a = shortcut(left);
    const b = shortcut(right);
    if (a === undefined || b === undefined) return undefined;
    return op === "&&"
      ? (e) => {
        const x = a(e);
        return x === true ? b(e) : x;
      }
      : (e) => {
        const x = a(e);
        return x === false ? b(e) : x;
      };
  }
  return undefined;
}

function not(inner: Shortcut | undefined): Shortcut | undefined {
  if (inner === undefined) return undefined;
  return (e) => {
    const x = inner(e);
    return x === undefined ? undefined : !x;
  };
}

function headerMap(headers: HeaderSource | undefined): ReadonlyMap<string, string> {
  if (headers === undefined) return EMPTY_HEADERS;
  const map = new Map<string, string>();
  for (const name of headers.keys()) map.set(name, headers.get(name));
  return map;
}

/** Names of all identifiers in a cel-js AST (nodes `{op: "id", args: name}`). */
function identifiers(ast: unknown): Set<string> {
  const names = new Set<string>();
  const seen = new Set<object>();
  const visit = (node: unknown): void => {
    if (typeof node !== "object" || node === null || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    const { op, args } = node as { op?: unknown; args?: unknown };
    if (op === "id" && typeof args === "string") names.add(args);
    else if (op !== "value") visit(args);
  };
  visit(ast);
  return names;
}

/** The first line of a cel-js error: its summary, without the source snippet. */
function summary(err: unknown): string {
  const text = typeof err === "object" && err !== null && "summary" in err &&
      typeof err.summary === "string"
    ? err.summary
    : err instanceof Error
    ? err.message
    : String(err);
  const line = unrenamed(text.split("\n", 1)[0]!.trim());
  return line === "" ? "invalid expression" : line;
}

function offsetOf(err: unknown): number {
  if (typeof err === "object" && err !== null && "range" in err) {
    const range = err.range as { start?: unknown } | undefined;
    if (typeof range?.start === "number") return range.start;
  }
  return 0;
}

/** The CEL name of a JavaScript value's type, for messages. */
function celTypeOf(value: unknown): string {
  switch (typeof value) {
    case "bigint":
      return "int";
    case "number":
      return "double";
    case "string":
      return "string";
    case "undefined":
      return "undefined";
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return "list";
      if (value instanceof Uint8Array) return "bytes";
      return "map";
    default:
      return typeof value;
  }
}
