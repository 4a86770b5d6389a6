/**
 * Hides the environment from MQTT.js while it loads (see `library.ts`): imported just before
 * "mqtt", so it runs just before MQTT.js and its dependencies are evaluated.
 *
 * @module
 */
import process from "node:process";

const saved = Object.getOwnPropertyDescriptor(process, "env");
if (saved) Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true });

/** Gives `process.env` back; called right after MQTT.js has been evaluated. */
export function restoreEnv(): void {
  if (saved) Object.defineProperty(process, "env", saved);
}
