/**
 * The effective configuration of a gateway: its local pipelines plus, for each deployed one, the
 * version the bucket asks for when it is valid here, else the version running now when that one
 * still is. A deployed pipeline with a local pipeline's name is rejected; the local one stays.
 *
 * @module
 */
import type { Config, PipelineDecl } from "../config/config.ts";
import type { AppliedPipeline } from "./state.ts";
import { validateDeployed, type ValidateOptions } from "./validate.ts";
import { compareText } from "../order.ts";

/** What became of the deployed version of one pipeline. */
export interface Outcome {
  key: string;
  revision: number;
  outcome: "applied" | "rejected";
  /** Why it was rejected: config errors as `key@revision:line:col: path: message` lines. */
  error?: string;
  /** Rejected: the revision that keeps running instead, if any. */
  runningRevision?: number;
}

/** One composition: the config to apply and what it means for the deployed pipelines. */
export interface Composed {
  config: Config;
  /** The deployed versions that run once `config` is applied, by pipeline name. */
  applied: Map<string, AppliedPipeline>;
  outcomes: Map<string, Outcome>;
}

/**
 * Composes the configuration to apply.
 *
 * @param local The local files' configuration (its connectors validate deployed pipelines).
 * @param wanted What the bucket asks for, by pipeline name.
 * @param running The deployed versions running now, by pipeline name.
 */
export function composeConfig(
  local: Config,
  wanted: ReadonlyMap<string, AppliedPipeline>,
  running: ReadonlyMap<string, AppliedPipeline>,
  options: ValidateOptions,
): Composed {
  const check = (name: string, p: AppliedPipeline) =>
    validateDeployed(name, `${p.key}@${p.revision}`, p.text, local, options);
  const applied = new Map<string, AppliedPipeline>();
  const outcomes = new Map<string, Outcome>();
  const decls = new Map<string, PipelineDecl>(local.pipelines);
  for (const [name, want] of [...wanted].sort(([a], [b]) => compareText(a, b))) {
    const clash = local.pipelines.get(name);
    if (clash) {
      const at = clash.location;
      outcomes.set(name, {
        key: want.key,
        revision: want.revision,
        outcome: "rejected",
        error: `a local pipeline has the name "${name}" (${at.file}:${at.line}:${at.column}): ` +
          "rename one of them",
      });
      continue;
    }
    const result = check(name, want);
    if ("decl" in result) {
      decls.set(name, result.decl);
      applied.set(name, want);
      outcomes.set(name, { key: want.key, revision: want.revision, outcome: "applied" });
      continue;
    }
    const outcome: Outcome = {
      key: want.key,
      revision: want.revision,
      outcome: "rejected",
      error: result.errors.join("\n"),
    };
    const previous = running.get(name);
    if (previous && previous.revision !== want.revision) {
      const kept = check(name, previous);
      if ("decl" in kept) {
        decls.set(name, kept.decl);
        applied.set(name, previous);
        outcome.runningRevision = previous.revision;
      }
    }
    outcomes.set(name, outcome);
  }
  return { config: { ...local, pipelines: decls }, applied, outcomes };
}
