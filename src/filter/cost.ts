/**
 * A static bound on how evaluation time grows with the size of an event, checked when an
 * expression is compiled. cel-js has no runtime cost limit, and one event must not stall the
 * process: `items.exists(a, items.exists(b, a == b))` over a 48 KB event took 3.5 s. With the
 * pipeline's `max_event_size` bounding the event, an expression whose cost is at most linear in the
 * event size finishes in milliseconds; one whose cost can grow with its square is refused.
 *
 * The estimate is a polynomial in E, the event size, kept as the maximum of its monomials (only
 * the degree matters). Every value read from the event (a field, `event`, `_headers`, `_tokens`,
 * `_subject`) may be as large as E. Operations cost what they may touch: `==` and `<` the shorter
 * operand, `in` the whole list, `+` and string functions their operands, `size()` and arithmetic
 * nothing. A comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) costs its body once
 * per element; the element is a symbolic size that is summed over the range, because the elements
 * of a list together are no larger than the list: `items.exists(i, i.name.contains("x"))` is
 * linear, `items.exists(i, i in other)` is quadratic.
 *
 * The estimate is conservative: it may refuse an expression that would in fact be cheap (e.g. `in`
 * on a map inside a comprehension); the remedy is to restructure, and docs/expressions.md says how.
 *
 * @module
 */
import { MATCHES_RE2 } from "./re2.ts";

/** Highest degree in the event size an expression's cost may have: linear. */
export const MAX_COST_DEGREE = 1;

/** Where and why an expression's cost grows faster than the event. */
export interface CostProblem {
  /** 0-based offset of the innermost construct whose cost is super-linear. */
  offset: number;
  /** The degree reached (2 = quadratic). */
  degree: number;
}

/**
 * Estimates the cost of a parsed cel-js expression as a function of the event size.
 *
 * @param ast The root node cel-js's `parse` returned.
 * @returns Undefined when the cost is at most linear, else where it stops being so.
 */
export function costProblem(ast: unknown): CostProblem | undefined {
  const analysis = new Analysis();
  const { cost } = analysis.node(ast, new Map());
  const degree = degreeOf(cost);
  if (degree <= MAX_COST_DEGREE) return undefined;
  return { offset: analysis.flagged ?? 0, degree };
}

// A monomial maps a dimension ("E", or the symbolic element size of one comprehension) to its
// exponent; a polynomial is the maximum of its monomials.
type Mono = ReadonlyMap<string, number>;
type Poly = readonly Mono[];

const CONSTANT: Poly = [new Map()];
const EVENT_SIZED: Poly = [new Map([["E", 1]])];

interface Estimate {
  /** How large the value can be. */
  size: Poly;
  /** How long computing it can take. */
  cost: Poly;
}

const SCALAR_FREE: Estimate = { size: CONSTANT, cost: CONSTANT };

function degreeOfMono(m: Mono): number {
  let d = 0;
  for (const e of m.values()) d += e;
  return d;
}

function degreeOf(p: Poly): number {
  let d = 0;
  for (const m of p) d = Math.max(d, degreeOfMono(m));
  return d;
}

function dominates(a: Mono, b: Mono): boolean {
  for (const [k, e] of b) if ((a.get(k) ?? 0) < e) return false;
  return true;
}

function max(...polys: Poly[]): Poly {
  const out: Mono[] = [];
  for (const p of polys) {
    for (const m of p) {
      if (out.some((o) => dominates(o, m))) continue;
      for (let i = out.length - 1; i >= 0; i--) if (dominates(m, out[i]!)) out.splice(i, 1);
      out.push(m);
    }
  }
  return out.length === 0 ? CONSTANT : out;
}

function mul(a: Poly, b: Poly): Poly {
  const out: Mono[] = [];
  for (const x of a) {
    for (const y of b) {
      const m = new Map(x);
      for (const [k, e] of y) m.set(k, (m.get(k) ?? 0) + e);
      out.push(m);
    }
  }
  return max(out);
}

/** An upper bound of the smaller of two sizes: the one of lower degree. */
function min(a: Poly, b: Poly): Poly {
  return degreeOf(b) < degreeOf(a) ? b : a;
}

/**
 * The total of `p` over the elements of a range of size `range`, `key` being the element's
 * symbolic size: a term without it is paid once per element (at most `range` elements), a term
 * with it to the power k sums to at most `range` to the power k.
 */
function sumOver(p: Poly, key: string, range: Poly): Poly {
  const out: Poly[] = [];
  for (const m of p) {
    const k = m.get(key) ?? 0;
    const rest = new Map(m);
    rest.delete(key);
    let factor = range;
    for (let i = 1; i < Math.max(k, 1); i++) factor = mul(factor, range);
    out.push(mul([rest], factor));
  }
  return max(...out);
}

/** Where a node is in the expression; for a method call, where the method's name is. */
function offsetOf(n: Node): number {
  if (n.op === "rcall" && Array.isArray(n.args)) {
    const end = (n.args[1] as Node | undefined)?.end;
    if (typeof end === "number") return end + 1;
  }
  return typeof n.start === "number" ? n.start : 0;
}

function isCall(args: unknown): args is [string, unknown[]] {
  return Array.isArray(args) && typeof args[0] === "string" && Array.isArray(args[1]);
}

function isMethodCall(args: unknown): args is [string, Node, Node[]] {
  return Array.isArray(args) && typeof args[0] === "string" && typeof args[1] === "object" &&
    args[1] !== null && Array.isArray(args[2]);
}

/** A cel-js AST node before checking: `op` and `args` as index.d.ts declares them. */
interface Node {
  op?: unknown;
  args?: unknown;
  start?: unknown;
  end?: unknown;
}

const COMPARISONS: ReadonlySet<string> = new Set(["==", "!=", "<", "<=", ">", ">="]);
const ARITHMETIC: ReadonlySet<string> = new Set(["-", "*", "/", "%"]);
const QUANTIFIERS: ReadonlySet<string> = new Set(["all", "exists", "exists_one"]);
/** Functions whose result is a number or a bool however large their operands. */
const SCALAR_RESULT: ReadonlySet<string> = new Set([
  "size",
  "int",
  "uint",
  "double",
  "bool",
  "startsWith",
  "endsWith",
  "contains",
  "indexOf",
  "lastIndexOf",
  "matches",
  MATCHES_RE2,
]);

class Analysis {
  /** Offset of the first (innermost) node found to cost more than linear. */
  flagged: number | undefined;
  #comprehensions = 0;

  node(ast: unknown, scope: ReadonlyMap<string, Poly>): Estimate {
    if (typeof ast !== "object" || ast === null) return SCALAR_FREE;
    const estimate = this.#node(ast as Node, scope);
    if (this.flagged === undefined && degreeOf(estimate.cost) > MAX_COST_DEGREE) {
      this.flagged = offsetOf(ast as Node);
    }
    return estimate;
  }

  #all(nodes: unknown[], scope: ReadonlyMap<string, Poly>): Estimate[] {
    return nodes.map((n) => this.node(n, scope));
  }

  #node(n: Node, scope: ReadonlyMap<string, Poly>): Estimate {
    const op = n.op;
    const args = n.args;
    switch (op) {
      case "value":
        return SCALAR_FREE;
      case "id":
        return {
          size: typeof args === "string" ? scope.get(args) ?? EVENT_SIZED : EVENT_SIZED,
          cost: CONSTANT,
        };
      case ".":
      case ".?": {
        const left = this.node(Array.isArray(args) ? args[0] : undefined, scope);
        return { size: left.size, cost: left.cost };
      }
      case "!_":
      case "-_":
        return { size: CONSTANT, cost: this.node(args, scope).cost };
      case "call":
        if (isCall(args)) return this.#call(args, scope);
        break;
      case "rcall":
        if (isMethodCall(args)) return this.#rcall(args, scope);
        break;
      case "map": {
        const parts = this.#all(Array.isArray(args) ? args.flat() : [], scope);
        return { size: max(...parts.map((p) => p.size)), cost: max(...parts.map((p) => p.cost)) };
      }
    }
    if (!Array.isArray(args)) {
      const inner = this.node(args, scope);
      return { size: inner.size, cost: max(inner.cost, inner.size) };
    }
    const parts = this.#all(args, scope);
    const sizes = parts.map((p) => p.size);
    const costs = parts.map((p) => p.cost);
    const size = (i: number): Poly => sizes[i] ?? CONSTANT;
    if (typeof op === "string") {
      if (COMPARISONS.has(op)) {
        return { size: CONSTANT, cost: max(...costs, min(size(0), size(1))) };
      }
      if (ARITHMETIC.has(op) || op === "&&" || op === "||") {
        return { size: CONSTANT, cost: max(...costs) };
      }
      if (op === "in") return { size: CONSTANT, cost: max(...costs, size(1)) };
      if (op === "?:") return { size: max(size(1), size(2)), cost: max(...costs) };
      if (op === "[]" || op === "[?]") return { size: size(0), cost: max(...costs) };
      if (op === "list") return { size: max(...sizes), cost: max(...costs) };
    }
    // `+` (list and string concatenation) and anything unknown: as large and as slow as its operands.
    return { size: max(...sizes), cost: max(...costs, ...sizes) };
  }

  #call([name, fnArgs]: [string, unknown[]], scope: ReadonlyMap<string, Poly>): Estimate {
    const parts = this.#all(fnArgs, scope);
    const costs = parts.map((p) => p.cost);
    const sizes = parts.map((p) => p.size);
    switch (name) {
      case "has":
      case "size":
      case "type":
        return { size: CONSTANT, cost: max(...costs) };
      case "dyn":
        return { size: max(...sizes), cost: max(...costs) };
      case "matches":
        // The pattern is a literal or at most MAX_DYNAMIC_PATTERN long: linear in the text.
        return { size: CONSTANT, cost: max(...costs, sizes[0] ?? CONSTANT) };
    }
    return {
      size: SCALAR_RESULT.has(name) ? CONSTANT : max(...sizes),
      cost: max(...costs, ...sizes),
    };
  }

  #rcall(
    [name, receiver, fnArgs]: [string, Node, Node[]],
    scope: ReadonlyMap<string, Poly>,
  ): Estimate {
    const iterVar = fnArgs[0]?.op === "id" ? fnArgs[0].args as string : undefined;
    if (iterVar !== undefined) {
      if (
        (QUANTIFIERS.has(name) || name === "filter") && fnArgs.length === 2 ||
        name === "map" && (fnArgs.length === 2 || fnArgs.length === 3)
      ) {
        return this.#comprehension(name, receiver, iterVar, fnArgs.slice(1), scope);
      }
      if (
        name === "bind" && receiver.op === "id" && receiver.args === "cel" && fnArgs.length === 3
      ) {
        const init = this.node(fnArgs[1], scope);
        const body = this.node(fnArgs[2], new Map(scope).set(iterVar, init.size));
        return { size: body.size, cost: max(init.cost, body.cost) };
      }
    }
    const recv = this.node(receiver, scope);
    const parts = this.#all(fnArgs, scope);
    const costs = [recv.cost, ...parts.map((p) => p.cost)];
    const argSizes = parts.map((p) => p.size);
    switch (name) {
      case "size":
        return { size: CONSTANT, cost: max(...costs) };
      case "matches":
      case MATCHES_RE2:
        return { size: CONSTANT, cost: max(...costs, recv.size) };
      case "startsWith":
      case "endsWith":
        return { size: CONSTANT, cost: max(...costs, ...argSizes) };
    }
    return {
      size: SCALAR_RESULT.has(name) ? CONSTANT : max(recv.size, ...argSizes),
      cost: max(...costs, recv.size, ...argSizes),
    };
  }

  #comprehension(
    name: string,
    receiver: Node,
    iterVar: string,
    body: Node[],
    scope: ReadonlyMap<string, Poly>,
  ): Estimate {
    const range = this.node(receiver, scope);
    const key = `element#${this.#comprehensions++}`;
    const inner = new Map(scope).set(iterVar, [new Map([[key, 1]])]);
    const parts = this.#all(body, inner);
    const cost = max(range.cost, sumOver(max(...parts.map((p) => p.cost)), key, range.size));
    const size = name === "map"
      ? sumOver(parts[parts.length - 1]!.size, key, range.size)
      : name === "filter"
      ? range.size
      : CONSTANT;
    return { size, cost };
  }
}
