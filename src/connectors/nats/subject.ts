/**
 * NATS subject syntax. Subjects are checked when configuration loads, so a bad subject is reported
 * with its location instead of failing, or silently matching nothing, once messages flow.
 *
 * @module
 */

const DOT = 0x2e;
const STAR = 0x2a;
const GREATER = 0x3e;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;

/** Why a subject is invalid, and where: what a config loader needs to point at the column. */
export interface SubjectProblem {
  /** Short lower-case reason, e.g. "empty token at position 2". */
  readonly reason: string;
  /** 0-based offset in the subject where the problem starts. */
  readonly offset: number;
}

/** Reason for a character that may never appear in a subject, or undefined for any other. */
function forbiddenCharacter(code: number): string | undefined {
  switch (code) {
    case SPACE:
      return "contains a space";
    case TAB:
      return "contains a tab";
    case LF:
    case CR:
      return "contains a line break";
    case NUL:
      return "contains a NUL character";
    default:
      return undefined;
  }
}

/**
 * Finds the first problem of a subject together with its offset, so that callers which know where
 * the subject came from (a config file, a template) can point at the offending character.
 *
 * Token positions in reasons are 1-based. With `wildcards: true` a token may be exactly `*`, and
 * the last token may be exactly `>`; `*` and `>` inside a longer token are rejected either way.
 */
export function findSubjectProblem(
  subject: string,
  options: { wildcards: boolean },
): SubjectProblem | undefined {
  const length = subject.length;
  if (length === 0) return { reason: "subject is empty", offset: 0 };
  let tokenStart = 0;
  let position = 1;
  for (let i = 0; i <= length; i++) {
    const code = i < length ? subject.charCodeAt(i) : DOT;
    if (code === DOT) {
      if (i === tokenStart) {
        return { reason: `empty token at position ${position}`, offset: i };
      }
      tokenStart = i + 1;
      position++;
      continue;
    }
    if (code === STAR || code === GREATER) {
      const wildcard = code === STAR ? "'*'" : "'>'";
      const next = i + 1 < length ? subject.charCodeAt(i + 1) : DOT;
      if (i !== tokenStart || next !== DOT) {
        return { reason: `${wildcard} must be a whole token`, offset: i };
      }
      if (!options.wildcards) {
        return { reason: "wildcards are not allowed here", offset: i };
      }
      if (code === GREATER && i + 1 !== length) {
        return { reason: "'>' is only allowed as the last token", offset: i };
      }
      continue;
    }
    const reason = forbiddenCharacter(code);
    if (reason !== undefined) return { reason, offset: i };
  }
  return undefined;
}

/**
 * Returns undefined for a valid subject, else a short reason such as "contains a space", for
 * messages that name the subject; see `findSubjectProblem` for the rules.
 */
export function subjectProblem(
  subject: string,
  options: { wildcards: boolean },
): string | undefined {
  return findSubjectProblem(subject, options)?.reason;
}

/**
 * Tells whether a string can stand as one literal subject token, so rendered template values and
 * instance names cannot add tokens, wildcards or protocol-breaking characters to a subject.
 */
export function isValidToken(token: string): boolean {
  const length = token.length;
  if (length === 0) return false;
  for (let i = 0; i < length; i++) {
    switch (token.charCodeAt(i)) {
      case DOT:
      case STAR:
      case GREATER:
      case SPACE:
      case TAB:
      case LF:
      case CR:
      case NUL:
        return false;
    }
  }
  return true;
}
