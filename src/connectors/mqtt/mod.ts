/**
 * The `mqtt` connector type: MQTT 5 / 3.1.1 subscribe and publish over one shared managed client
 * per declaration (one client id, one broker session).
 *
 * @module
 */
import { defineConnectorType } from "../../registry.ts";
import { MqttConnector } from "./client.ts";
import { checkTlsFiles } from "./files.ts";
import {
  type MqttConnectorConfig,
  mqttConnectorSchema,
  type MqttSinkConfig,
  mqttSinkSchema,
  type MqttSourceConfig,
  mqttSourceSchema,
} from "./schema.ts";

/** Registration of `type: mqtt`. */
export const mqttConnectorType = defineConnectorType<
  MqttConnectorConfig,
  MqttSourceConfig,
  MqttSinkConfig
>({
  type: "mqtt",
  summary: "MQTT 5 / 3.1.1: subscribe to topic filters (QoS 0/1, acked after the sinks), " +
    "publish to topic templates",
  connectorSchema: mqttConnectorSchema,
  sourceSchema: mqttSourceSchema,
  sinkSchema: mqttSinkSchema,
  addressKey: "topic",
  tokenSeparator: "/",
  secretKeys: ["auth", "tls"],
  urlKeys: ["url"],
  deadLetterProblem: (sink) =>
    sink.topic.includes("{")
      ? {
        key: "topic",
        message:
          "a dead-letter topic cannot be a template: failures to render it would have nowhere to go",
      }
      : undefined,
  checkFiles: checkTlsFiles,
  create: (name, config, resources) => new MqttConnector(name, config, resources),
});
