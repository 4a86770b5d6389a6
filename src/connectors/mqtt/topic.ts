/**
 * MQTT topic syntax, checked when configuration loads so that a bad topic is reported with its
 * location instead of being refused by the broker (or matching nothing) once messages flow.
 *
 * Topic filters (sources) may use `+` as a whole level and `#` as the whole last level. Topic names
 * (sinks) use neither, and Sluice also refuses empty levels there (`a//b`, a leading or trailing
 * `/`): a rendered template value that is empty would otherwise silently change the topic.
 *
 * @module
 */

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const NUL = 0x00;

/** MQTT strings are at most 65,535 bytes of UTF-8. */
const MAX_TOPIC_BYTES = 65_535;

/** Why a topic is invalid, and where (0-based offset), for `file:line:col` messages. */
export interface TopicProblem {
  readonly reason: string;
  readonly offset: number;
}

/** Finds the first problem of a topic filter (`wildcards: true`) or topic name. */
export function findTopicProblem(
  topic: string,
  options: { wildcards: boolean; emptyLevels: boolean },
): TopicProblem | undefined {
  const length = topic.length;
  if (length === 0) return { reason: "topic is empty", offset: 0 };
  if (new TextEncoder().encode(topic).length > MAX_TOPIC_BYTES) {
    return { reason: `topic is longer than ${MAX_TOPIC_BYTES} bytes`, offset: 0 };
  }
  let levelStart = 0;
  let level = 1;
  for (let i = 0; i <= length; i++) {
    const code = i < length ? topic.charCodeAt(i) : SLASH;
    if (code === SLASH) {
      if (i === levelStart && !options.emptyLevels) {
        return { reason: `empty level at position ${level}`, offset: i };
      }
      levelStart = i + 1;
      level++;
      continue;
    }
    if (code === PLUS || code === HASH) {
      const wildcard = code === PLUS ? "'+'" : "'#'";
      if (!options.wildcards) {
        return { reason: `wildcard ${wildcard} is not allowed here`, offset: i };
      }
      const next = i + 1 < length ? topic.charCodeAt(i + 1) : SLASH;
      if (i !== levelStart || next !== SLASH) {
        return { reason: `${wildcard} must be a whole level`, offset: i };
      }
      if (code === HASH && i + 1 !== length) {
        return { reason: "'#' is only allowed as the last level", offset: i };
      }
      continue;
    }
    if (code === NUL) return { reason: "contains a NUL character", offset: i };
  }
  return undefined;
}

/** A short reason why `filter` is not a valid subscription filter, or undefined. */
export function topicFilterProblem(filter: string): TopicProblem | undefined {
  return findTopicProblem(filter, { wildcards: true, emptyLevels: true });
}

/**
 * Whether a string can stand as one literal level of a sink topic: not empty, no `/`, `+`, `#`
 * or NUL. Rendered template values are checked with it.
 */
export function isValidLevel(level: string): boolean {
  const length = level.length;
  if (length === 0) return false;
  for (let i = 0; i < length; i++) {
    switch (level.charCodeAt(i)) {
      case SLASH:
      case PLUS:
      case HASH:
      case NUL:
        return false;
    }
  }
  return true;
}

/**
 * Whether `topic` matches the subscription `filter` (MQTT rules: `+` one level, a final `#` any
 * number of levels including none; topics starting with `$` match no leading wildcard).
 * Shared subscriptions (`$share/group/filter`) match on their filter part.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter.startsWith("$share/")) {
    const rest = filter.indexOf("/", 7);
    if (rest < 0) return false;
    filter = filter.slice(rest + 1);
  }
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === "#") return true;
    if (i >= t.length) return false;
    if (level !== "+" && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Compiles `filter` into a test of topics, so that routing a message does not split the filter
 * (and, for the common shapes, not the topic either): a literal filter is a comparison, `a/b/#`
 * a prefix test, `#` a test of the first character; only filters with `+` split the topic.
 */
export function compileTopicFilter(filter: string): (topic: string) => boolean {
  if (filter.startsWith("$share/")) {
    const rest = filter.indexOf("/", 7);
    return rest < 0 ? () => false : compileTopicFilter(filter.slice(rest + 1));
  }
  if (!filter.includes("+")) {
    if (filter === "#") return (topic) => !topic.startsWith("$");
    if (filter.endsWith("/#")) {
      const parent = filter.slice(0, -2);
      const prefix = filter.slice(0, -1);
      return (topic) => topic.startsWith(prefix) || topic === parent;
    }
    if (!filter.includes("#")) return (topic) => topic === filter;
  }
  return (topic) => topicMatches(filter, topic);
}
