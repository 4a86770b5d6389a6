/**
 * The `nats` connector type: core NATS publish/subscribe over one shared managed client.
 *
 * @module
 */
import { defineConnectorType } from "../../registry.ts";
import { NatsConnector } from "./client.ts";
import { compileTemplate } from "./template.ts";
import { natsConnectorSchema, natsSinkSchema, natsSourceSchema } from "./schema.ts";

/** Registration of `type: nats`. */
export const natsConnectorType = defineConnectorType({
  type: "nats",
  summary: "Core NATS: subscribe to subjects (with queue groups), publish to subjects",
  connectorSchema: natsConnectorSchema,
  sourceSchema: natsSourceSchema,
  sinkSchema: natsSinkSchema,
  requests: true,
  compileAddress: compileTemplate,
  replies: (source) => source.jetstream === undefined,
  create: (name, config, resources) => new NatsConnector(name, config, resources),
});
