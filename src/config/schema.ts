/**
 * Schemas of the connector-independent parts of a config file: the top level and a pipeline.
 * Source and sink settings beyond `connector` belong to the connector type's own schemas.
 *
 * @module
 */
import { z } from "zod";

/** One config file: both maps are optional and merged across files. */
export const fileSchema = z.strictObject({
  connectors: z.record(z.string(), z.unknown()).optional().describe(
    "Connector declarations by name",
  ),
  pipelines: z.record(z.string(), z.unknown()).optional().describe("Pipeline declarations by name"),
});

/** A reference to a connector; the connector type's schema checks the rest of the object. */
const endpoint = (description: string) =>
  z.looseObject({
    connector: z.string().describe("Name of the connector to use"),
  }).describe(description);

/** One pipeline declaration. */
export const pipelineSchema = z.strictObject({
  description: z.string().optional().describe("Free text for people"),
  source: endpoint("Where events come from"),
  filter: z.string().min(1, "expected a CEL expression; leave the key out to pass everything")
    .optional().describe("CEL expression; events for which it is true go to the sinks"),
  sinks: z.array(endpoint("Where passing events go")).min(1, "expected at least one sink"),
  dead_letter: endpoint("Where malformed events and evaluation failures go").optional(),
});

/** The parsed form of {@link pipelineSchema}. */
export type PipelineInput = z.output<typeof pipelineSchema>;
