/**
 * The `nats` connector type: core NATS publish/subscribe over one shared managed client.
 *
 * @module
 */
import { defineConnectorType } from "../../registry.ts";
import { NatsConnector } from "./client.ts";
import { checkNatsFiles } from "./files.ts";
import { compileTemplate } from "./template.ts";
import { natsConnectorSchema, natsSinkSchema, natsSourceSchema } from "./schema.ts";

/** Registration of `type: nats`. */
export const natsConnectorType = defineConnectorType({
  type: "nats",
  summary: "Core NATS: subscribe to subjects (with queue groups), publish to subjects",
  connectorSchema: natsConnectorSchema,
  sourceSchema: natsSourceSchema,
  sinkSchema: natsSinkSchema,
  addressKey: "subject",
  tokenSeparator: ".",
  secretKeys: ["auth", "tls"],
  urlKeys: ["servers"],
  // A template needs an event to render; a failure to render would then have nowhere to go.
  deadLetterProblem: (settings) =>
    settings.subject.includes("{")
      ? {
        key: "subject",
        message:
          "a dead-letter subject cannot be a template: failures to render it would have nowhere to go",
      }
      : undefined,
  checkFiles: checkNatsFiles,
  requests: true,
  compileAddress: compileTemplate,
  replies: (source) =>
    source.jetstream === undefined ||
    "a JetStream consumer's messages cannot be answered (their reply subject acknowledges them): " +
      "use a core subscription",
  create: (name, config, resources) => new NatsConnector(name, config, resources),
});
