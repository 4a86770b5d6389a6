/**
 * CEL's `matches` with RE2 semantics, in linear time. cel-js implements `matches` with the
 * backtracking JavaScript RegExp, on which `name.matches("^(a+)+$")` over 29 characters stalls the
 * process for seconds; CEL specifies RE2, which re2js implements without backtracking.
 *
 * cel-js cannot replace a built-in overload, so {@linkcode rewriteMatches} renames each
 * `s.matches(p)` call of a parsed expression to {@linkcode MATCHES_RE2} before it is checked, and
 * {@linkcode registerRe2} declares that function (and CEL's global form `matches(s, p)`, which
 * cel-js lacks). A constant pattern is compiled once, when the expression is compiled; a pattern
 * computed per event is compiled on first use and kept in a small bounded cache.
 *
 * re2js is loaded only for a configuration that uses `matches` (`re2_library.ts`): about 1 MiB of a
 * gateway's idle memory from source. Compiling is synchronous and loading a module is not, so
 * compiling an expression that calls `matches` before {@linkcode loadRe2} throws
 * {@linkcode Re2NotLoaded}, and {@linkcode withRe2} runs a validation again once re2js is loaded:
 * what `check`, `run`, a reload and a fleet deployment do.
 *
 * @module
 */
import type { RE2JS } from "re2js";

/** Name the member form `s.matches(p)` is renamed to; messages show it as `matches`. */
export const MATCHES_RE2 = "matches_re2";

/**
 * Longest pattern computed per event that is compiled: matching costs the input's length times the
 * pattern's, so a pattern read from an event must not be event-sized.
 */
export const MAX_DYNAMIC_PATTERN = 1024;

/** Distinct patterns computed per event that stay compiled; the least recently used go first. */
const DYNAMIC_CACHE_SIZE = 128;

/** A pattern that RE2 refuses; `reason` is RE2's own, e.g. "missing closing )". */
export class PatternError extends SyntaxError {
  /** The pattern as written. */
  readonly pattern: string;

  constructor(pattern: string, reason: string, options?: ErrorOptions) {
    super(`invalid RE2 pattern ${quote(pattern)}: ${reason}`, options);
    this.name = "PatternError";
    this.pattern = pattern;
  }
}

/**
 * Thrown when an expression that calls `matches` is compiled before {@linkcode loadRe2}: a signal
 * for {@linkcode withRe2}, never a configuration error.
 */
export class Re2NotLoaded extends Error {
  /** Stable code. */
  readonly code = "re2_not_loaded";

  constructor() {
    super("matches needs re2js, which is not loaded: compile through withRe2 (src/filter/re2.ts)");
    this.name = "Re2NotLoaded";
  }
}

/** re2js's compiler, once {@linkcode loadRe2} loaded it. */
let re2: typeof RE2JS | undefined;

/** Loads re2js, once; later calls return at once. */
export async function loadRe2(): Promise<void> {
  re2 ??= (await import("./re2_library.ts")).RE2JS;
}

/** Whether re2js is loaded: after {@linkcode loadRe2}, or a validation that needed it. */
export function re2Loaded(): boolean {
  return re2 !== undefined;
}

/**
 * Runs `compile` (a validation that may compile expressions); when one of them calls `matches`
 * before re2js is loaded, loads it and runs `compile` again. `compile` must be free of side
 * effects besides its result, as validating configuration texts is.
 *
 * @param compile The validation.
 * @returns What `compile` returned.
 */
export async function withRe2<T>(compile: () => T): Promise<T> {
  if (re2 !== undefined) return compile();
  try {
    return compile();
  } catch (e) {
    if (!(e instanceof Re2NotLoaded)) throw e;
  }
  await loadRe2();
  return compile();
}

/**
 * Throws {@linkcode Re2NotLoaded} unless re2js is loaded: called when an expression being compiled
 * calls `matches`.
 */
export function requireRe2(): void {
  if (re2 === undefined) throw new Re2NotLoaded();
}

/** Patterns that appear as literals in compiled expressions: compiled once, never evicted. */
const constants = new Map<string, RE2JS>();
/** Patterns computed per event, most recently used last. */
const dynamic = new Map<string, RE2JS>();

/**
 * Compiles `pattern`, throwing {@linkcode PatternError} when RE2 refuses it.
 *
 * @param pattern An RE2 pattern.
 * @returns The compiled pattern.
 */
function compile(pattern: string): RE2JS {
  if (re2 === undefined) throw new Re2NotLoaded();
  try {
    return re2.compile(pattern);
  } catch (e) {
    const reason = e instanceof Error ? e.message.replace(/\s+/g, " ") : String(e);
    throw new PatternError(pattern, reason, { cause: e });
  }
}

/**
 * Compiles a literal pattern of an expression being compiled, so that an invalid one is a config
 * error and evaluation never compiles it again. The set of literal patterns is bounded by the
 * configuration (and what reloads add to it).
 *
 * @param pattern The literal pattern.
 * @throws {PatternError} When RE2 refuses the pattern.
 */
export function compileConstantPattern(pattern: string): void {
  if (!constants.has(pattern)) constants.set(pattern, compile(pattern));
}

function regexFor(pattern: string): RE2JS {
  const known = constants.get(pattern);
  if (known !== undefined) return known;
  const cached = dynamic.get(pattern);
  if (cached !== undefined) {
    dynamic.delete(pattern);
    dynamic.set(pattern, cached);
    return cached;
  }
  if (pattern.length > MAX_DYNAMIC_PATTERN) {
    throw new RangeError(
      `matches: a pattern computed per event may have at most ${MAX_DYNAMIC_PATTERN} characters, ` +
        `got ${pattern.length}`,
    );
  }
  const regex = compile(pattern);
  if (dynamic.size >= DYNAMIC_CACHE_SIZE) dynamic.delete(dynamic.keys().next().value!);
  dynamic.set(pattern, regex);
  return regex;
}

/**
 * Whether `pattern` matches any part of `text`, as CEL's `matches` (RE2 partial match).
 *
 * @param text The string searched.
 * @param pattern An RE2 pattern.
 * @returns True when some substring of `text` matches.
 * @throws {PatternError} When the pattern is invalid.
 */
export function re2Matches(text: string, pattern: string): boolean {
  return regexFor(pattern).test(text);
}

/** What {@linkcode registerRe2} needs of a cel-js Environment. */
export interface FunctionRegistry {
  registerFunction(signature: string, handler: (...args: never[]) => unknown): unknown;
}

/**
 * Declares the RE2 `matches` functions in a cel-js Environment.
 *
 * @param env The environment expressions are parsed in.
 */
export function registerRe2(env: FunctionRegistry): void {
  env.registerFunction(`string.${MATCHES_RE2}(string): bool`, re2Matches);
  env.registerFunction("matches(string, string): bool", re2Matches);
}

/** A cel-js AST node, as far as the rewrite reads it. */
interface Node {
  op?: unknown;
  args?: unknown;
  start?: unknown;
}

/** The literal pattern of a `matches` call, with its offset, when the pattern is a literal. */
export interface LiteralPattern {
  pattern: string;
  offset: number;
}

/** What {@linkcode rewriteMatches} found. */
export interface MatchesCalls {
  /** How many `matches` calls the expression makes, in either form. */
  calls: number;
  /** Their literal patterns, in no particular order. */
  literals: LiteralPattern[];
}

/**
 * Renames the member calls `s.matches(p)` of a parsed (not yet checked) expression to
 * {@linkcode MATCHES_RE2}, and returns the literal patterns of all `matches` calls so that the
 * caller compiles them (reporting an invalid one at its offset).
 *
 * @param ast The root node cel-js's `parse` returned.
 * @returns The calls found, with their literal patterns.
 */
export function rewriteMatches(ast: unknown): MatchesCalls {
  const literals: LiteralPattern[] = [];
  let calls = 0;
  const seen = new Set<object>();
  const visit = (node: unknown): void => {
    if (typeof node !== "object" || node === null || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    const n = node as Node;
    if (n.op === "value") return;
    const args = n.args;
    if (Array.isArray(args)) {
      // rcall: [name, receiver, [args]]; call: [name, [args]].
      if (n.op === "rcall" && args[0] === "matches" && isList(args[2], 1)) {
        args[0] = MATCHES_RE2;
        calls++;
        literal(args[2][0]);
      } else if (n.op === "call" && args[0] === "matches" && isList(args[1], 2)) {
        calls++;
        literal(args[1][1]);
      }
    }
    visit(args);
  };
  const literal = (node: unknown): void => {
    const n = node as Node;
    if (n?.op === "value" && typeof n.args === "string") {
      literals.push({ pattern: n.args, offset: typeof n.start === "number" ? n.start : 0 });
    }
  };
  visit(ast);
  return { calls, literals };
}

/** A cel-js message shows the renamed function as the user wrote it. */
export function unrenamed(message: string): string {
  return message.replaceAll(MATCHES_RE2, "matches");
}

function isList(value: unknown, length: number): value is unknown[] {
  return Array.isArray(value) && value.length === length;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
