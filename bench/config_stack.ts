/**
 * The least a configurable program on Sluice's stack loads: a seven-line YAML configuration
 * parsed with `yaml`, validated with a small `zod` schema, and a filter compiled with CEL. The
 * baseline does this before it subscribes when the bench runs with `--baseline-config-stack`, so
 * that its idle and peak memory show what these libraries hold on their own, without anything of
 * Sluice (docs/performance.md, "Memory"). zod is imported as Sluice imports it, so that a bundle of
 * this drops the same parts of it.
 *
 * @module
 */
import { parse } from "yaml";
import * as z from "zod";
import { Environment } from "cel";

const CONFIG = `connectors:
  local:
    type: nats
    servers: [nats://127.0.0.1:4222]
pipelines:
  hot:
    source: { connector: local, subject: sensors.temperature.> }
    filter: temperature > 30
`;

const schema = z.object({
  connectors: z.record(z.string(), z.object({ type: z.string(), servers: z.array(z.string()) })),
  pipelines: z.record(
    z.string(),
    z.object({
      source: z.object({ connector: z.string(), subject: z.string() }),
      filter: z.string(),
    }),
  ),
});

/**
 * Parses, validates and compiles the configuration above.
 *
 * @returns The validated configuration and the compiled filters, for the caller to keep.
 */
export function loadConfigStack(): unknown {
  const config = schema.parse(parse(CONFIG));
  const env = new Environment().registerVariable("temperature", "double");
  const filters = Object.values(config.pipelines).map((p) => env.parse(p.filter));
  return { config, filters };
}
