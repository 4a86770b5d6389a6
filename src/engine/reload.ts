/**
 * What a reload changes: which connectors must be replaced and which pipelines stopped or
 * started. Pure, so the rules are tested without servers: an unchanged connector keeps its
 * connection; a pipeline restarts when its declaration or any connector it uses changed.
 *
 * @module
 */
import type { Config, PipelineDecl } from "../config/config.ts";

/** The difference between the running configuration and a new one. */
export interface ReloadPlan {
  /** Connectors declared only in the new config. */
  addConnectors: string[];
  /** Connectors whose declaration changed: the old client goes, a new one comes. */
  replaceConnectors: string[];
  /** Connectors no longer declared. */
  removeConnectors: string[];
  /** Running pipelines to drain and stop (removed, changed, or on a replaced connector). */
  stopPipelines: string[];
  /** Pipelines to start from the new config (added, changed, or on a replaced connector). */
  startPipelines: string[];
  /** Pipelines that keep running untouched. */
  keepPipelines: string[];
}

/** Plans the move from `current` to `next`. */
export function planReload(current: Config, next: Config): ReloadPlan {
  const addConnectors: string[] = [];
  const replaceConnectors: string[] = [];
  const removeConnectors: string[] = [];
  for (const [name, decl] of next.connectors) {
    const old = current.connectors.get(name);
    if (!old) addConnectors.push(name);
    else if (old.fingerprint !== decl.fingerprint || old.type !== decl.type) {
      replaceConnectors.push(name);
    }
  }
  for (const name of current.connectors.keys()) {
    if (!next.connectors.has(name)) removeConnectors.push(name);
  }
  const changedConnectors = new Set([...replaceConnectors, ...removeConnectors]);
  const touches = (p: PipelineDecl) => connectorsOf(p).some((c) => changedConnectors.has(c));

  const stopPipelines: string[] = [];
  const startPipelines: string[] = [];
  const keepPipelines: string[] = [];
  for (const [name, decl] of current.pipelines) {
    const replacement = next.pipelines.get(name);
    if (!replacement) stopPipelines.push(name);
    else if (replacement.fingerprint !== decl.fingerprint || touches(decl)) {
      stopPipelines.push(name);
      startPipelines.push(name);
    } else keepPipelines.push(name);
  }
  for (const name of next.pipelines.keys()) {
    if (!current.pipelines.has(name)) startPipelines.push(name);
  }
  return {
    addConnectors,
    replaceConnectors,
    removeConnectors,
    stopPipelines,
    startPipelines,
    keepPipelines,
  };
}

/** Every connector a pipeline uses, without repeats. */
export function connectorsOf(p: PipelineDecl): string[] {
  const names = [p.source.connector, ...p.sinks.map((s) => s.connector)];
  if (p.deadLetter) names.push(p.deadLetter.connector);
  for (const d of p.processors) names.push(...(d.factory.connectors ?? []));
  return [...new Set(names)];
}

/** True when the plan changes nothing. */
export function isEmptyPlan(plan: ReloadPlan): boolean {
  return plan.addConnectors.length + plan.replaceConnectors.length +
      plan.removeConnectors.length + plan.stopPipelines.length + plan.startPipelines.length === 0;
}
