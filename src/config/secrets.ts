/**
 * Keeps secrets out of config errors, whatever message would quote them. Schema messages already
 * describe values under a connector type's secret keys by type only; this is the net under that:
 * every value found under a secret key, every `${VAR}` value that landed there, and the userinfo
 * of URLs under URL keys (`nats://user:pw@host`) is replaced by `***` in every message, including
 * messages about other keys (a password reused as a duration, a URL quoted by a parse error).
 *
 * @module
 */
import { ConfigError } from "../errors.ts";

/** What stands for a hidden value in messages. */
export const REDACTED = "***";

/** `scheme://userinfo@`: the userinfo of any URL in a message is hidden, known or not. */
const URL_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/"'?#]*@/g;

/**
 * Secrets shorter than this are hidden where they stand as a whole word, not inside longer words:
 * hiding every `pw` inside other words would make messages unreadable.
 */
const SUBSTRING_MIN = 8;

/** The secret values of one load, and their redaction from messages. */
export class Secrets {
  readonly #values = new Set<string>();
  /** Matches any value; undefined when there is none, null until built after an `add`. */
  #pattern: RegExp | undefined | null = null;

  /** Adds a value that no message may contain. */
  add(value: string): void {
    const v = value.trim();
    if (v === "" || this.#values.has(v)) return;
    this.#values.add(v);
    this.#pattern = null;
  }

  /** Adds every string and number inside `value` (a secret key's value). */
  addAll(value: unknown): void {
    if (typeof value === "string") this.add(value);
    else if (typeof value === "number" || typeof value === "bigint") this.add(String(value));
    else if (Array.isArray(value)) value.forEach((v) => this.addAll(v));
    else if (typeof value === "object" && value !== null) {
      Object.values(value).forEach((v) => this.addAll(v));
    }
  }

  /**
   * Adds the userinfo of each URL in `value` (a string, a comma-separated list or a list of
   * strings), with or without a scheme, and its user and password.
   *
   * @returns The userinfo parts found, so callers can tell which `${VAR}` values they contain.
   */
  addUrls(value: unknown): string[] {
    const found: string[] = [];
    const texts = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : [];
    for (const text of texts) {
      if (typeof text !== "string") continue;
      const m = /^\s*(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?([^/?#]*)@/.exec(text);
      if (!m?.[1]) continue;
      const userinfo = m[1];
      const colon = userinfo.indexOf(":");
      const parts = colon < 0
        ? [userinfo]
        : [userinfo, userinfo.slice(0, colon), userinfo.slice(colon + 1)];
      for (const part of parts) {
        this.add(part);
        this.add(safeDecode(part));
      }
      found.push(userinfo);
    }
    return found;
  }

  /** `text` with every URL userinfo and every secret value replaced by `***`. */
  redact(text: string): string {
    const pattern = this.#regex();
    const out = pattern ? text.replace(pattern, REDACTED) : text;
    return out.replace(URL_USERINFO, `$1${REDACTED}@`);
  }

  /** {@link redact} applied to the message of each error; paths and locations stay. */
  redactErrors(errors: readonly ConfigError[]): ConfigError[] {
    return errors.map((e) => {
      const message = this.redact(e.message);
      return message === e.message ? e : new ConfigError(message, e.path, e.location);
    });
  }

  /** Only URL userinfo hidden: for messages that name files under secret keys on purpose. */
  redactUrls(errors: readonly ConfigError[]): ConfigError[] {
    return errors.map((e) => {
      const message = e.message.replace(URL_USERINFO, `$1${REDACTED}@`);
      return message === e.message ? e : new ConfigError(message, e.path, e.location);
    });
  }

  #regex(): RegExp | undefined {
    if (this.#pattern !== null) return this.#pattern;
    // Longest first, so a value is hidden whole rather than around a shorter secret inside it.
    // Messages quote at most the first 40 characters of a value (`describe`): hide those too.
    const values = [...new Set([...this.#values].flatMap((v) => [v, v.slice(0, 40)]))]
      .sort((a, b) => b.length - a.length);
    const alternatives = values.map((v) => {
      const quoted = escapeRegExp(v);
      // JSON-quoted messages escape `"` and `\`: hide the escaped form too.
      const json = escapeRegExp(JSON.stringify(v).slice(1, -1));
      const forms = json === quoted ? quoted : `${quoted}|${json}`;
      return v.length >= SUBSTRING_MIN ? forms : `(?<![A-Za-z0-9])(?:${forms})(?![A-Za-z0-9])`;
    });
    this.#pattern = alternatives.length ? new RegExp(alternatives.join("|"), "g") : undefined;
    return this.#pattern;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
