/**
 * A parsed YAML config file that remembers where every node came from, so that any problem found
 * later (by the schema, by a cross-reference check) can be reported as `file:line:col`.
 *
 * @module
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
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

  private constructor(path: string, text: string) {
    this.path = path;
    this.#text = text;
    this.#lines = new LineCounter();
    this.#doc = parseDocument(text, {
      lineCounter: this.#lines,
      prettyErrors: false,
      uniqueKeys: true,
      // Keep values as written: `on`, `yes`, octal and so on are not special (YAML 1.2 core).
      version: "1.2",
    });
    this.value = this.#doc.errors.length === 0 ? this.#doc.toJS({ maxAliasCount: 100 }) : undefined;
  }

  /** Parses `text` as the file at `path`; syntax errors are returned, not thrown. */
  static parse(path: string, text: string): { file: YamlFile; errors: ConfigError[] } {
    const file = new YamlFile(path, text);
    const errors = file.#doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const message = e.message.split("\n")[0] ?? e.message;
      return new ConfigError(
        `invalid YAML: ${message.replace(/ at line \d+, column \d+:?$/, "")}`,
        "",
        pos ? { file: path, line: pos.line, column: pos.col } : { file: path, line: 1, column: 1 },
      );
    });
    return { file, errors };
  }

  /**
   * Where the value at `path` stands. With `key: true` the position of the map key itself (for
   * unknown keys). A path that does not exist resolves to its deepest existing parent.
   * `offset` moves into a single-line scalar (e.g. to a character of a CEL expression).
   */
  locate(path: KeyPath, options: { key?: boolean; offset?: number } = {}): Location {
    let node: Node | null | undefined = this.#doc.contents as Node | null;
    let keyNode: Node | undefined;
    for (const step of path) {
      keyNode = undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) =>
          isPair(p) && (isScalar(p.key) ? String(p.key.value) === String(step) : false)
        );
        if (!pair) break;
        keyNode = pair.key as Node;
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof step === "number") {
        const item = node.items[step] as Node | undefined;
        if (!item) break;
        node = item;
      } else {
        break;
      }
    }
    const target = options.key && keyNode ? keyNode : node ?? keyNode;
    let start = target?.range?.[0] ?? 0;
    if (options.offset !== undefined && isScalar(target) && !options.key) {
      const quoted = target.type === "QUOTE_DOUBLE" || target.type === "QUOTE_SINGLE";
      const single = target.type === "PLAIN" || quoted;
      const end = target.range?.[1] ?? start;
      if (single && !this.#text.slice(start, end).includes("\n")) {
        start += (quoted ? 1 : 0) + options.offset;
      }
    }
    const pos = this.#lines.linePos(start);
    return { file: this.path, line: pos.line, column: pos.col };
  }
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
