/**
 * Config schemas of the `nats` connector type: the connector declaration, a pipeline source and a
 * sink. Declared once; validation, TypeScript types and the reference docs come from here.
 *
 * @module
 */
import * as z from "zod";
import { certificatePair, duration, reconnectFields, size } from "../../config/fields.ts";
import { subjectProblem } from "./subject.ts";
import { compileTemplate, TemplateSyntaxError } from "./template.ts";

function serverUrl(text: string): string | undefined {
  const withScheme = text.includes("://") ? text : `nats://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return `invalid server URL "${text}": expected nats://host:port or tls://host:port`;
  }
  if (!["nats:", "tls:"].includes(url.protocol)) {
    return `unsupported scheme "${url.protocol}" in "${text}": expected nats:// or tls://`;
  }
  if (url.username || url.password) {
    return `credentials in server URL "${url.hostname}": put them under auth: so they stay out of logs`;
  }
  if (!url.hostname) return `server URL "${text}" has no host`;
  return undefined;
}

const servers = z
  .union([z.string(), z.array(z.string()).min(1, "expected at least one server URL")])
  .describe("NATS server URL, or a list of them (nats://host:port, tls://host:port)")
  .transform((v, ctx) => {
    const list = typeof v === "string" ? v.split(",").map((s) => s.trim()) : v;
    list.forEach((text, i) => {
      const problem = serverUrl(text);
      if (problem) {
        ctx.addIssue({ code: "custom", message: problem, path: typeof v === "string" ? [] : [i] });
      }
    });
    return list;
  });

const auth = z
  .strictObject({
    token: z.string().min(1).optional().describe("Token authentication"),
    user: z.string().min(1).optional().describe("User name (with password)"),
    password: z.string().optional().describe("Password (with user)"),
    nkey_seed_file: z.string().min(1).optional().describe("Path of a file holding an NKey seed"),
    creds_file: z.string().min(1).optional().describe("Path of a .creds file (JWT + NKey seed)")
      .meta({ examples: ["/etc/sluice/gateway.creds"] }),
  })
  .describe("Credentials: exactly one of token, user+password, nkey_seed_file, creds_file")
  .superRefine((a, ctx) => {
    const forms = [
      a.token !== undefined && "token",
      (a.user !== undefined || a.password !== undefined) && "user/password",
      a.nkey_seed_file !== undefined && "nkey_seed_file",
      a.creds_file !== undefined && "creds_file",
    ].filter(Boolean);
    if (forms.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message: forms.length === 0
          ? "expected one of token, user+password, nkey_seed_file, creds_file"
          : `expected exactly one form of credentials, got ${forms.join(" and ")}`,
      });
    }
    if ((a.user === undefined) !== (a.password === undefined)) {
      ctx.addIssue({ code: "custom", message: "user and password go together: set both" });
    }
  });

const tls = z
  .strictObject({
    ca_file: z.string().min(1).optional().describe("CA certificate(s) to verify the server with")
      .meta({ examples: ["/etc/sluice/ca.pem"] }),
    cert_file: z.string().min(1).optional().describe("Client certificate (with key_file)"),
    key_file: z.string().min(1).optional().describe("Client private key (with cert_file)"),
    handshake_first: z.boolean().default(false).describe(
      "TLS before the NATS INFO (server option handshake_first)",
    ),
  })
  .describe("TLS settings; the server certificate is always verified")
  .superRefine(certificatePair);

const reconnect = reconnectFields(
  "Attempts before giving up; -1 retries forever (a gateway never gives up)",
)
  .describe("Reconnect behaviour, also used while the first connection is being made");

/** Schema of a `type: nats` connector declaration. */
export const natsConnectorSchema = z.strictObject({
  servers: servers.default(["nats://127.0.0.1:4222"]).meta({
    examples: ["nats://10.0.0.5:4222", [
      "tls://nats-1.example.com:4222",
      "tls://nats-2.example.com:4222",
    ]],
  }),
  name: z.string().min(1).optional().describe("Client name shown in the server's monitoring"),
  auth: auth.optional(),
  tls: tls.optional(),
  reconnect: reconnect.default({ wait: 2000, jitter: 500, max_attempts: -1 }),
  ping_interval: duration("How often the client pings the server to detect a dead link").default(
    30000,
  ),
  connect_timeout: duration("Time allowed for one connection attempt").default(5000),
  inbox_prefix: z.string().regex(
    /^[A-Za-z0-9_-]+$/,
    "expected letters, digits, '-' and '_' (one subject token)",
  ).optional().describe(
    "Prefix of this client's reply subjects instead of _INBOX, so that server permissions can " +
      "keep other clients from reading its replies (e.g. _INBOX_gw-01 for a fleet gateway)",
  ),
  max_pending: size(
    "Sent bytes unconfirmed by the server and still held in memory before sinks on this connector refuse events",
  ).default(8 * 1024 * 1024),
});

/** The parsed form of {@link natsConnectorSchema}. */
export type NatsConnectorConfig = z.output<typeof natsConnectorSchema>;

function subjectField(wildcards: boolean, description: string) {
  return z.string().describe(description).superRefine((s, ctx) => {
    const problem = subjectProblem(s, { wildcards });
    if (problem) ctx.addIssue({ code: "custom", message: `invalid subject "${s}": ${problem}` });
  });
}

/** Stream and consumer names: what nats-server accepts, kept to characters safe in subjects. */
const JS_NAME = /^[A-Za-z0-9_-]+$/;
const JS_NAME_RULE = "letters, digits, '-' and '_'";

/** Settings of a JetStream source (`source.jetstream`). */
export const jetStreamSourceSchema = z.strictObject({
  stream: z.string().regex(JS_NAME, `expected a stream name of ${JS_NAME_RULE}`).describe(
    "Stream to consume; it must exist unless create_stream is true",
  ).meta({ examples: ["SENSORS"] }),
  durable: z.string().regex(JS_NAME, `expected a consumer name of ${JS_NAME_RULE}`).describe(
    "Durable pull consumer; its position survives Sluice and server restarts",
  ).meta({ examples: ["sluice-readings"] }),
  deliver: z.enum(["all", "new", "last"]).default("all").describe(
    "Where a newly created consumer starts: every stored message, only new ones, or the last one",
  ),
  ack_wait: duration(
    "Time the server waits for an ack before it redelivers; longer than a sink's retries take",
  ).default(30_000),
  max_ack_pending: z.int().min(1).max(1_000_000).default(1000).describe(
    "Most messages handed out and not yet acked: bounds memory and work in flight",
  ),
  max_deliver: z.int().min(-1).default(-1).describe(
    "Deliveries of one message before the server gives up on it; -1 = no limit",
  ),
  batch: z.int().min(1).max(10_000).optional().describe(
    "Messages asked for per pull request (default: max_ack_pending, at most 256)",
  ),
  nak_delay: duration(
    "Redelivery delay after a sink failure; doubles with each delivery up to 60 times it",
  ).default(1000),
  create_consumer: z.boolean().default(true).describe(
    "Create the durable consumer when it does not exist (otherwise starting fails)",
  ),
  create_stream: z.boolean().default(false).describe(
    "Create the stream (file storage, the source subject) when it does not exist; off by " +
      "default so that a typo never creates a stream on a production server",
  ),
}).describe("Consume a JetStream stream with a durable consumer: at-least-once, acked per event");

/** The parsed form of {@link jetStreamSourceSchema}. */
export type JetStreamSourceConfig = z.output<typeof jetStreamSourceSchema>;

/** Schema of a pipeline `source:` on a nats connector. */
export const natsSourceSchema = z.strictObject({
  subject: subjectField(true, "Subject to subscribe to; `*` and a final `>` are wildcards")
    .meta({ examples: ["sensors.temperature.>", "sensors.*.room1"] }),
  queue: z.string().regex(
    /^[^\s.*>]+$/,
    "expected a queue group name without spaces, '.', '*' or '>'",
  )
    .optional().describe("Queue group: instances in one group share the stream"),
  format: z.enum(["json"]).default("json").describe("Payload format of the events"),
  jetstream: jetStreamSourceSchema.optional(),
}).superRefine((s, ctx) => {
  if (s.jetstream && s.queue !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["queue"],
      message: "a JetStream source shares its durable consumer instead: remove queue",
    });
  }
});

/** The parsed form of {@link natsSourceSchema}. */
export type NatsSourceConfig = z.output<typeof natsSourceSchema>;

/** Retry settings of a JetStream sink (`jetstream: true` takes the defaults). */
export const jetStreamSinkSchema = z.strictObject({
  timeout: duration("Time to wait for the PubAck of one attempt").default(5000),
  retries: z.int().min(0).max(100).default(3).describe(
    "Attempts after the first before the send fails (then: outbox, nak, or dead letter)",
  ),
  retry_wait: duration("Delay before the first retry; doubles with each one").default(250),
  max_in_flight: z.int().min(1).max(100_000).default(1024).describe(
    "Most publishes awaiting their PubAck; beyond it sends overflow (bounds memory)",
  ),
}).describe("Publish to JetStream and wait for the PubAck, with retries");

/** The parsed form of {@link jetStreamSinkSchema}. */
export type JetStreamSinkConfig = z.output<typeof jetStreamSinkSchema>;

const JS_SINK_DEFAULTS: JetStreamSinkConfig = {
  timeout: 5000,
  retries: 3,
  "retry_wait": 250,
  "max_in_flight": 1024,
};

const FIELD_PATH = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

const msgId = z.union([
  z.literal("hash").describe("SHA-256 of the sink subject and the payload"),
  z.strictObject({
    field: z.string().regex(FIELD_PATH, "expected a field path such as id or meta.id").describe(
      "Dot path of the event field holding a stable id (string or number)",
    ),
  }),
]).describe(
  "Nats-Msg-Id header, so that JetStream drops duplicates of retries and outbox replays " +
    "(within the stream's duplicate window)",
);

/** Schema of a pipeline sink (or `dead_letter:`) on a nats connector. */
export const natsSinkSchema = z.strictObject({
  subject: z.string().describe(
    "Subject to publish to; may be a template: {field.path} from the event, {_tokens[N]} of the source subject",
  ).superRefine((s, ctx) => {
    try {
      compileTemplate(s);
    } catch (e) {
      if (!(e instanceof TemplateSyntaxError)) throw e;
      ctx.addIssue({
        code: "custom",
        message: e.message,
        params: { offset: e.offset },
      });
    }
  }).meta({ examples: ["alerts.high-value", "sites.{site}.{_tokens[1]}"] }),
  pass_headers: z.boolean().default(false).describe("Copy the source message's headers"),
  jetstream: z.union([z.boolean(), jetStreamSinkSchema]).default(false).describe(
    "Publish to JetStream and await the PubAck (true, or retry settings)",
  ).transform((j) => j === true ? JS_SINK_DEFAULTS : j === false ? undefined : j),
  msg_id: msgId.optional(),
});

/** The parsed form of {@link natsSinkSchema}. */
export type NatsSinkConfig = z.output<typeof natsSinkSchema>;
