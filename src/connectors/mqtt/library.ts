/**
 * MQTT.js, loaded without touching the environment. Its dependencies read it while they load —
 * `debug` enumerates all of it, `readable-stream` reads READABLE_STREAM — which would make every
 * Sluice need an unrestricted `--allow-env`. Those reads only pick debug-logging and stream-
 * implementation switches that Sluice does not use, so `env_shield.ts` (evaluated just before
 * "mqtt") gives them an empty environment and the real one is restored right after. Nothing of
 * MQTT.js reads the environment later: Sluice builds the sockets itself (`socket.ts`, loaded here
 * with MQTT.js on the first connect, so that Node's net and tls load only then too).
 *
 * @module
 */
import { restoreEnv } from "./env_shield.ts";
import { MqttClient } from "mqtt";

restoreEnv();

export { MqttClient };
export { openSocket } from "./socket.ts";
