/**
 * Sluice: filter and route JSON events between NATS subjects, configured in YAML.
 *
 * @module
 */
import { exitOnMissingPermission, main } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args).catch((e: unknown) => exitOnMissingPermission(e)));
}

export { main };
