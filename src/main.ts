/**
 * Sluice: filter and route JSON events between NATS subjects, configured in YAML.
 *
 * @module
 */
import { main } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

export { main };
