/**
 * MQTT.js, loaded without touching the environment. Its dependencies read it while they load —
 * `debug` enumerates all of it, `readable-stream` reads READABLE_STREAM — which would make every
 * Sluice need an unrestricted `--allow-env`. Those reads only pick debug-logging and stream-
 * implementation switches that Sluice does not use, so `env_shield.ts` (evaluated just before
 * "mqtt") gives them an empty environment and the real one is restored right after. Nothing of
 * MQTT.js reads the environment later: Sluice builds the sockets itself (`socket.ts`, loaded here
 * with MQTT.js on the first connect, so that Node's net and tls load only then too).
 *
 * Only MQTT.js's client module is imported, not its package entry, which also loads the
 * WebSocket, ALI and WeChat transports and the `connect()` helper that Sluice does not use (the
 * bundle is 0.37 MB smaller; docs/performance.md, "Memory"). The module is CommonJS with an
 * `exports.default`; how deep an ES import finds the class differs between Deno's Node
 * compatibility and a bundle, hence the check below.
 *
 * @module
 */
import { restoreEnv } from "./env_shield.ts";
import * as clientModule from "mqtt/lib/client";

restoreEnv();

type Client = typeof import("mqtt").MqttClient;
// Under `deno run` the namespace's default is the module's `exports`, whose `default` is the class.
const exported = clientModule.default as unknown as Client | { default: Client };
const MqttClient: Client = typeof exported === "function" ? exported : exported.default;

export { MqttClient };
export { socketOpener } from "./socket.ts";
