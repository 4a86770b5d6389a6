/**
 * Schemas of the connector-independent parts of a config file: the top level and a pipeline.
 * Source and sink settings beyond `connector` belong to the connector type's own schemas.
 *
 * @module
 */
import * as z from "zod";
import { duration, isSubjectToken, size } from "./fields.ts";

/** Port of the health endpoints when `health.listen` names none. */
export const DEFAULT_HEALTH_PORT = 9180;

/** Host of the health endpoints when `health.listen` gives only a port: loopback only. */
export const DEFAULT_HEALTH_HOST = "127.0.0.1";

/** How often heartbeats go out when `health.nats.interval` is not set, in milliseconds. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

/** Shortest heartbeat interval accepted: faster would be traffic, not a heartbeat. */
export const MIN_HEARTBEAT_INTERVAL_MS = 100;

const LISTEN_HINT = "expected host:port (e.g. 127.0.0.1:9180, [::1]:9180, :9180) or false";

/**
 * Parses `health.listen`: `host:port`, `[v6]:port`, `:port` or a bare port. Only a port means
 * loopback; listening on another interface has to be written out.
 */
function parseListen(value: string | number): { hostname: string; port: number } | string {
  const text = String(value).trim();
  let host = "";
  let portText = text;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    host = v6[1] ?? "";
    portText = v6[2] ?? "";
  } else if (text.includes(":")) {
    const at = text.lastIndexOf(":");
    host = text.slice(0, at);
    portText = text.slice(at + 1);
    if (host.includes(":")) return `invalid listen address "${text}": write IPv6 as [addr]:port`;
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return `invalid port in listen address "${text}": ${LISTEN_HINT}`;
  }
  if (/[\s/]/.test(host)) return `invalid host in listen address "${text}": ${LISTEN_HINT}`;
  return { hostname: host === "" ? DEFAULT_HEALTH_HOST : host, port: Number(portText) };
}

const listen = z
  .union([z.literal(false), z.int(), z.string()])
  .describe(
    "Address of the HTTP endpoints (/healthz, /readyz, /metrics, /status): host:port, :port " +
      "(127.0.0.1), port 0 for any free port, or false for no HTTP",
  )
  // `null`, not undefined, for "no HTTP": the default would replace an undefined output.
  .transform((value, ctx): { hostname: string; port: number } | null => {
    if (value === false) return null;
    const parsed = parseListen(value);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

/** The `health:` section: HTTP endpoints and, optionally, health over NATS. */
export const healthSchema = z
  .strictObject({
    listen: listen.default({ hostname: DEFAULT_HEALTH_HOST, port: DEFAULT_HEALTH_PORT })
      // The default as written: the parsed one is an address object.
      .meta({
        default: `${DEFAULT_HEALTH_HOST}:${DEFAULT_HEALTH_PORT}`,
        examples: [":9180", "[::1]:9180", false],
      }),
    instance: z.string().describe(
      "Name of this gateway in health subjects and snapshots (default: the hostname); one " +
        "NATS subject token: no '.', '*', '>' or whitespace",
    ).refine(
      isSubjectToken,
      "expected one subject token: not empty, no '.', '*', '>', spaces, tabs or line breaks",
    ).optional().meta({ examples: ["gw-01"] }),
    nats: z.strictObject({
      connector: z.string().describe(
        "nats connector that answers sluice.health.<instance> and publishes heartbeats",
      ),
      interval: duration("Time between heartbeats on sluice.heartbeat.<instance>").refine(
        (ms) => ms >= MIN_HEARTBEAT_INTERVAL_MS,
        `expected an interval of at least ${MIN_HEARTBEAT_INTERVAL_MS}ms`,
      ).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
    }).optional().describe("Health over NATS: request-reply responder and heartbeats"),
  })
  .describe("Health endpoints; without this section nothing listens");

/** The parsed form of {@link healthSchema}. */
export type HealthInput = z.output<typeof healthSchema>;

/** Name of the fleet's KV bucket when `fleet.bucket` is not set. */
export const DEFAULT_FLEET_BUCKET = "sluice-fleet";

/** A label key or value, a token of KV keys and subjects. */
const fleetToken = (what: string) =>
  z.string().regex(
    /^[A-Za-z0-9_-]+$/,
    `expected a ${what} of letters, digits, '-' and '_' (it is a token of KV keys and subjects)`,
  );

/** The `fleet:` section: pipelines deployed over NATS from a JetStream KV bucket. */
export const fleetSchema = z
  .strictObject({
    connector: z.string().describe("nats connector that carries the fleet control plane"),
    id: fleetToken("gateway id").optional().describe(
      "This gateway's id, for `fleet deploy --to` (default: the hostname)",
    ),
    labels: z.record(fleetToken("label key"), fleetToken("label value")).default({}).describe(
      "Labels for `fleet deploy --label k=v`",
    ),
    bucket: z.string().regex(
      /^[A-Za-z0-9_-]+$/,
      "expected a bucket name of letters, digits, '-' and '_'",
    )
      .default(DEFAULT_FLEET_BUCKET).describe("The JetStream KV bucket holding deployed pipelines"),
    domain: z.string().regex(/^[A-Za-z0-9_-]+$/, "expected a JetStream domain name").optional()
      .describe(
        "JetStream domain of the server holding the bucket, e.g. a hub reached through a leaf node",
      ),
    state_dir: z.string().min(1, "expected a directory").describe(
      "Directory where the last applied deployed pipelines are kept, for a start while offline",
    ),
  })
  .describe("Pipelines deployed over NATS by `sluice fleet deploy`");

/** The parsed form of {@link fleetSchema}. */
export type FleetInput = z.output<typeof fleetSchema>;

/** One config file: every section is optional; connectors and pipelines merge across files. */
export const fileSchema = z.strictObject({
  connectors: z.record(z.string(), z.unknown()).optional().describe(
    "Connector declarations by name",
  ),
  pipelines: z.record(z.string(), z.unknown()).optional().describe("Pipeline declarations by name"),
  health: healthSchema.optional().describe(
    "Health and monitoring endpoints; may be declared in one file only",
  ),
  fleet: fleetSchema.optional().describe(
    "Pipelines deployed over NATS; may be declared in one file only",
  ),
});

/** A reference to a connector; the connector type's schema checks the rest of the object. */
const endpoint = (description: string) =>
  z.looseObject({
    connector: z.string().describe("Name of the connector to use"),
  }).describe(description);

/** Default of a pipeline's `max_event_size`: 1 MiB, far above a sensor reading. */
export const DEFAULT_MAX_EVENT_SIZE = 1024 * 1024;

/** Default of `buffer.max_size`: 64 MiB of events. */
export const DEFAULT_BUFFER_MAX_SIZE = 64 * 1024 * 1024;

/** A sink's store-and-forward outbox (`buffer:`), common to every connector type. */
export const bufferSchema = z
  .strictObject({
    path: z.string().min(1, "expected the path of the outbox file").describe(
      "File of the durable outbox (SQLite); its directory is created. One path per sink",
    ).meta({ examples: ["/var/lib/sluice/uplink.db"] }),
    max_size: size("Most bytes of events the outbox holds").default(DEFAULT_BUFFER_MAX_SIZE),
    overflow: z.enum(["drop_oldest", "drop_newest", "block"]).default("drop_oldest").describe(
      "When the outbox is full: discard the oldest stored events, refuse the new one, or make " +
        "the new one wait for room (meant for JetStream sources, which then slow down)",
    ),
  })
  .describe(
    "Store-and-forward: while the sink is unreachable or failing, keep events on disk and send " +
      "them in order once it is back",
  )
  .transform((b) => ({ path: b.path, maxSize: b.max_size, overflow: b.overflow }));

/** A sink: a connector reference, an optional outbox, and the connector type's own settings. */
const sinkEndpoint = (description: string) =>
  z.looseObject({
    connector: z.string().describe("Name of the connector to use"),
    buffer: bufferSchema.optional(),
  }).describe(description);

/** A sink of a pipeline: a dead letter's fields plus `when`. */
const pipelineSink = z.looseObject({
  connector: z.string().describe("Name of the connector to use"),
  buffer: bufferSchema.optional(),
  when: z.string().min(1, "expected a CEL expression; leave the key out to send every event")
    .optional().describe(
      "CEL bool expression: this sink gets only the events for which it holds",
    ).meta({ examples: ["kw > 10"] }),
}).describe("Where passing events go");

/** One pipeline declaration. */
export const pipelineSchema = z.strictObject({
  description: z.string().optional().describe("Free text for people"),
  source: endpoint("Where events come from"),
  filter: z.string().min(1, "expected a CEL expression; leave the key out to pass everything")
    .optional().describe("CEL expression; events for which it is true go to the sinks")
    .meta({ examples: ['temperature > 30 && site == "berlin"'] }),
  processors: z.array(z.unknown()).optional().describe(
    "Processors applied in order: filter, map, drop, rename, dedupe, throttle, sample, window, " +
      "request",
  ),
  // Required unless `reply: true`: the loader checks, so that one load reports every mistake.
  sinks: z.array(pipelineSink).optional().describe(
    "Where passing events go; at least one, unless `reply: true`",
  ),
  dead_letter: sinkEndpoint("Where malformed events and evaluation failures go").optional(),
  reply: z.boolean().default(false).describe(
    "Answer each request (a message with a reply subject) with the resulting event, or with " +
      "an empty error reply (Sluice-Error, Nats-Service-Error-Code) when it is dropped or fails " +
      "(docs/request-reply.md)",
  ),
  max_event_size: size(
    "Largest payload decoded; a larger one is dead-lettered before decoding, which bounds the " +
      "time any expression spends on one event (docs/expressions.md)",
  ).default(DEFAULT_MAX_EVENT_SIZE).meta({ examples: ["64KiB"] }),
});

/** The parsed form of {@link pipelineSchema}. */
export type PipelineInput = z.output<typeof pipelineSchema>;
