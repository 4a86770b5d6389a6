/**
 * Zod fields shared by processor schemas: dotted field paths, CEL expressions, rates.
 *
 * @module
 */
import { z } from "zod";

const FIELD_PATH = /^[^.\s]+(?:\.[^.\s]+)*$/;

/** A dotted field path such as `reading.unit`. */
export function fieldPath(description: string) {
  return z.string().regex(
    FIELD_PATH,
    "expected a field name or dotted path such as reading.unit (no empty segments or spaces)",
  ).describe(description);
}

/** A CEL expression, compiled by the kind's `compile`. */
export function cel(description: string) {
  return z.string().min(1, "expected a CEL expression").describe(description);
}

/** The smallest `max_keys` accepted and the default. */
export const DEFAULT_MAX_KEYS = 10_000;

/** A bound on remembered keys. */
export function maxKeys(description: string) {
  return z.int().min(1, "expected at least 1").default(DEFAULT_MAX_KEYS).describe(description);
}
