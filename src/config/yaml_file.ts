/**
 * A parsed YAML config file that remembers where every node came from, so that any problem found
 * later (by the schema, by a cross-reference check) can be reported as `file:line:col`.
 *
 * @module
 */
import {
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  visit,
} from "yaml";
import { ConfigError, type Location } from "../errors.ts";

/** A key path into the document, e.g. `["pipelines", "alerts", "sinks", 0, "subject"]`. */
export type KeyPath = readonly (string | number)[];

/** Largest config file we read: a gateway config is kilobytes; megabytes mean a mistake. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** One config file, parsed, with its values and node positions. */
export class YamlFile {
  readonly path: string;
  readonly value: unknown;
  readonly #text: string;
  readonly #doc: ReturnType<typeof parseDocument>;
  readonly #lines: LineCounter;
  /** Why the document could not be turned into values (an alias problem), if it could not. */
  readonly #aliasError: ConfigError | undefined;
  /** Keys that appear twice in one map. */
  readonly #duplicates: ConfigError[] = [];

  private constructor(path: string, text: string) {
    this.path = path;
    this.#text = text;
    this.#lines = new LineCounter();
    this.#doc = parseDocument(text, {
      lineCounter: this.#lines,
      prettyErrors: false,
      // The library compares every key with every other one of its map, which takes minutes for
      // a map of 100k keys; duplicates are found in linear time below instead.
      uniqueKeys: false,
      // Keep values as written: `on`, `yes`, octal and so on are not special (YAML 1.2 core).
      version: "1.2",
    });
    let value: unknown;
    if (this.#doc.errors.length === 0) this.#findDuplicates();
    if (this.#doc.errors.length === 0 && this.#duplicates.length === 0) {
      try {
        value = this.#doc.toJS({ maxAliasCount: 100 });
      } catch (e) {
        // An alias without its anchor, or aliases that expand exponentially (a "billion laughs").
        if (!(e instanceof ReferenceError)) throw e;
        this.#aliasError = this.#aliasProblem(e.message);
      }
    }
    this.value = value;
  }

  #aliasProblem(message: string): ConfigError {
    let at = 0;
    visit(this.#doc, {
      Alias: (_, alias) => {
        if (alias.resolve(this.#doc) !== undefined) return undefined;
        at = alias.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    const pos = this.#lines.linePos(at);
    const text = /^Unresolved alias/.test(message)
      ? "an alias (*name) refers to no anchor (&name) set before it"
      : /alias count/i.test(message)
      ? "aliases expand to too much data: expected at most 100 alias expansions"
      : message;
    return new ConfigError(`invalid YAML: ${text}`, "", {
      file: this.path,
      line: pos.line,
      column: pos.col,
    });
  }

  /** Parses `text` as the file at `path`; syntax errors are returned, not thrown. */
  static parse(path: string, text: string): { file: YamlFile; errors: ConfigError[] } {
    const file = new YamlFile(path, text);
    const errors = file.#doc.errors.map((e) => {
      // Without prettyErrors the library leaves linePos unset: position from the offset instead.
      const pos = file.#lines.linePos(e.pos[0]);
      const location = { file: path, line: pos.line, column: pos.col };
      if (e.code === "MULTIPLE_DOCS") {
        return new ConfigError(
          "invalid YAML: a second document ('---'): expected one document per file; split it into two files",
          "",
          location,
        );
      }
      const message = e.message.split("\n")[0] ?? e.message;
      return new ConfigError(
        `invalid YAML: ${message.replace(/ at line \d+, column \d+:?$/, "")}`,
        "",
        location,
      );
    });
    errors.push(...file.#duplicates);
    if (file.#aliasError) errors.push(file.#aliasError);
    return { file, errors };
  }

  /** Reports every key that appears twice in one map, naming both places. */
  #findDuplicates(): void {
    visit(this.#doc, {
      Map: (_, map, ancestors) => {
        const seen = new Map<string, number>();
        for (const pair of map.items) {
          if (!isScalar(pair.key)) continue;
          // As JavaScript object keys: `1:` and `"1":` are the same key once loaded.
          const key = String(pair.key.value);
          const start = pair.key.range?.[0] ?? 0;
          const first = seen.get(key);
          if (first === undefined) {
            seen.set(key, start);
            continue;
          }
          const path = [...keyPath([...ancestors, map]), key];
          const [section, name] = path;
          const what = path.length === 2 && (section === "connectors" || section === "pipelines")
            ? `${section.slice(0, -1)} "${name}" is declared twice`
            : `key "${key}" appears twice in one map`;
          const at = this.#lines.linePos(start);
          const before = this.#lines.linePos(first);
          this.#duplicates.push(
            new ConfigError(
              `${what}; first at ${this.path}:${before.line}:${before.col}`,
              formatPath(path),
              { file: this.path, line: at.line, column: at.col },
            ),
          );
        }
        return undefined;
      },
    });
  }

  /**
   * Where the value at `path` stands. With `key: true` the position of the map key itself (for
   * unknown keys). A map or list value that has a key is located at its key, so a problem of the
   * whole `auth:` block points at `auth:` rather than at its first entry. A path that does not
   * exist (a missing key) resolves to the key of its deepest existing parent.
   * `offset` moves into a single-line scalar (e.g. to a character of a CEL expression); it counts
   * characters of the parsed string, so escapes of quoted scalars are accounted for. When `value`
   * is given and differs from the scalar as written (interpolation replaced part of it), the
   * offset cannot be mapped back and the scalar's start is used.
   */
  locate(
    path: KeyPath,
    options: { key?: boolean; offset?: number; value?: string } = {},
  ): Location {
    let node: Node | null | undefined = this.#doc.contents as Node | null;
    let keyNode: Node | undefined;
    let complete = true;
    for (const step of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) =>
          isPair(p) && (isScalar(p.key) ? String(p.key.value) === String(step) : false)
        );
        if (!pair) {
          complete = false;
          break;
        }
        keyNode = pair.key as Node;
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof step === "number") {
        const item = node.items[step] as Node | undefined;
        if (!item) {
          complete = false;
          break;
        }
        keyNode = undefined;
        node = item;
      } else {
        complete = false;
        break;
      }
    }
    const empty = node === null || node === undefined || (isScalar(node) && node.value === null);
    const atKey = keyNode !== undefined &&
      (options.key || !complete || isCollection(node) || empty);
    const target = atKey ? keyNode : node ?? keyNode;
    let start = target?.range?.[0] ?? 0;
    if (
      options.offset !== undefined && complete && !atKey && isScalar(target) &&
      (options.value === undefined || options.value === target.value)
    ) {
      const quoted = target.type === "QUOTE_DOUBLE" || target.type === "QUOTE_SINGLE";
      const end = target.range?.[1] ?? start;
      const source = this.#text.slice(start, end);
      if ((target.type === "PLAIN" || quoted) && !source.includes("\n")) {
        start += quoted
          ? 1 + sourceOffset(source.slice(1), options.offset, target.type === "QUOTE_DOUBLE")
          : options.offset;
      }
    }
    const pos = this.#lines.linePos(start);
    return { file: this.path, line: pos.line, column: pos.col };
  }
}

/** The key path of a node from its ancestors as `visit` reports them (document first). */
function keyPath(ancestors: readonly unknown[]): (string | number)[] {
  const path: (string | number)[] = [];
  ancestors.forEach((node, i) => {
    if (isPair(node)) path.push(isScalar(node.key) ? String(node.key.value) : "?");
    else if (isSeq(node) && i + 1 < ancestors.length) {
      path.push(node.items.indexOf(ancestors[i + 1] as Node));
    }
  });
  return path;
}

/**
 * Maps an offset into the parsed value of a single-line quoted scalar to an offset into its source
 * text (after the opening quote): `\"` or `''` is two characters written for one parsed.
 */
function sourceOffset(source: string, offset: number, double: boolean): number {
  let parsed = 0;
  let i = 0;
  while (parsed < offset && i < source.length) {
    if (double && source[i] === "\\") {
      const kind = source[i + 1];
      const digits = kind === "x" ? 2 : kind === "u" ? 4 : kind === "U" ? 8 : 0;
      const code = digits ? parseInt(source.slice(i + 2, i + 2 + digits), 16) : 0;
      parsed += code > 0xffff ? 2 : 1;
      i += 2 + digits;
    } else if (!double && source[i] === "'" && source[i + 1] === "'") {
      parsed++;
      i += 2;
    } else {
      parsed++;
      i++;
    }
  }
  return i;
}

/** Renders a key path the way operators write it: `pipelines.alerts.sinks[0].subject`. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const step of path) {
    if (typeof step === "number") out += `[${step}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(step)) out += out ? `.${step}` : step;
    else out += `[${JSON.stringify(step)}]`;
  }
  return out;
}
