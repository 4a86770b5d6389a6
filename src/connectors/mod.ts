/**
 * Every connector type Sluice ships, registered statically so a compiled executable contains them.
 * A new kind: a folder under `src/connectors/` and one `.register()` line here.
 *
 * @module
 */
import { Registry } from "../registry.ts";
import { mqttConnectorType } from "./mqtt/mod.ts";
import { natsConnectorType } from "./nats/mod.ts";

/** A registry with all built-in connector types. */
export function builtinRegistry(): Registry {
  return new Registry().register(natsConnectorType).register(mqttConnectorType);
}
