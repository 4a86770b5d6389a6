/**
 * Finds the secrets of a config file's connector declarations, as their types declare them
 * (`secretKeys`, `urlKeys`), so that no message of the load can quote them.
 *
 * @module
 */
import type { AnyConnectorType, Registry } from "../registry.ts";
import type { Substitution } from "./interpolate_tree.ts";
import { isPlainObject } from "./located.ts";
import type { Secrets } from "./secrets.ts";

/**
 * The types a connector declaration may be: its own when its `type` is registered, else every
 * registered type (an unknown type's secrets are still kept out of messages).
 */
export function candidateTypes(raw: unknown, registry: Registry): AnyConnectorType[] {
  const named = isPlainObject(raw) && typeof raw.type === "string"
    ? registry.get(raw.type)
    : undefined;
  return named ? [named] : registry.types();
}

function keysOf(raw: unknown, registry: Registry): { secret: Set<string>; url: Set<string> } {
  const types = candidateTypes(raw, registry);
  return {
    secret: new Set(types.flatMap((t) => t.secretKeys)),
    url: new Set(types.flatMap((t) => t.urlKeys)),
  };
}

/**
 * Adds to `secrets` every value under a connector's secret keys, the userinfo of URLs under its
 * URL keys, and the value of each `${VAR}` that landed in either.
 *
 * @param value A config file's interpolated top level.
 * @param substitutions Where variable values went in that file.
 */
export function collectConnectorSecrets(
  value: unknown,
  substitutions: readonly Substitution[],
  registry: Registry,
  secrets: Secrets,
): void {
  const connectors = isPlainObject(value) && isPlainObject(value.connectors)
    ? new Map(Object.entries(value.connectors))
    : new Map<string, unknown>();
  for (const raw of connectors.values()) {
    if (!isPlainObject(raw)) continue;
    const { secret, url } = keysOf(raw, registry);
    for (const [key, v] of Object.entries(raw)) {
      if (secret.has(key)) secrets.addAll(v);
      else if (url.has(key)) secrets.addUrls(v);
    }
  }
  for (const { path, text, values } of substitutions) {
    if (path[0] !== "connectors" || path.length < 3) continue;
    const { secret, url } = keysOf(connectors.get(String(path[1])), registry);
    const key = String(path[2]);
    if (secret.has(key)) values.forEach((v) => secrets.add(v));
    else if (url.has(key)) {
      // A variable that went into a URL's userinfo (`nats://${USER}:${PW}@host`).
      const userinfo = secrets.addUrls(text);
      values.filter((v) => userinfo.some((u) => u.includes(v))).forEach((v) => secrets.add(v));
    }
  }
}
