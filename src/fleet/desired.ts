/**
 * What the bucket asks of one gateway: for each pipeline name, the entry of its most specific
 * target (the gateway's id, then a label, then all); between equally specific keys, the latest.
 *
 * @module
 */
import { parseKey, specificity } from "./keys.ts";
import type { AppliedPipeline } from "./state.ts";

/** One current value of the bucket. */
export interface Entry {
  revision: number;
  text: string;
}

/**
 * Resolves the entries a gateway watches into one version per pipeline.
 *
 * @param entries Current values by key (deleted keys absent).
 */
export function resolveDesired(entries: ReadonlyMap<string, Entry>): Map<string, AppliedPipeline> {
  const best = new Map<string, AppliedPipeline & { rank: number }>();
  for (const [key, entry] of entries) {
    const parsed = parseKey(key);
    if (!parsed) continue;
    const rank = specificity(parsed.target);
    const current = best.get(parsed.pipeline);
    if (
      current &&
      (current.rank > rank || (current.rank === rank && current.revision > entry.revision))
    ) continue;
    best.set(parsed.pipeline, { key, revision: entry.revision, text: entry.text, rank });
  }
  return new Map(
    [...best].map(([name, { key, revision, text }]) => [name, { key, revision, text }]),
  );
}
