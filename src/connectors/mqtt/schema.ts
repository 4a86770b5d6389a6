/**
 * Config schemas of the `mqtt` connector type: the connector declaration, a pipeline source and a
 * sink. Declared once; validation, TypeScript types and the reference docs come from here.
 *
 * @module
 */
import * as z from "zod";
import { certificatePair, duration, reconnectFields, size } from "../../config/fields.ts";
import { parseDuration } from "../../config/units.ts";
import { compileTemplate, TemplateSyntaxError } from "./template.ts";
import { findTopicProblem, topicFilterProblem } from "./topic.ts";

const DAY_MS = 86_400_000;
/** MQTT 5 Session Expiry Interval is a four-byte count of seconds. */
const MAX_SESSION_EXPIRY_S = 0xffff_ffff;

/** A parsed broker address: MQTT.js takes host, port and protocol per fail-over server. */
export interface BrokerUrl {
  readonly protocol: "mqtt" | "mqtts";
  readonly host: string;
  readonly port: number;
  /** As written, for logs (it never holds credentials: the schema refuses them). */
  readonly text: string;
}

function brokerUrl(text: string): BrokerUrl | string {
  const withScheme = text.includes("://") ? text : `mqtt://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return `invalid broker URL "${text}": expected mqtt://host:port or mqtts://host:port`;
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== "mqtt" && protocol !== "mqtts") {
    return `unsupported scheme "${url.protocol}" in "${text}": expected mqtt:// or mqtts://`;
  }
  if (url.username || url.password) {
    return `credentials in broker URL "${url.hostname}": put them under auth: so they stay out of logs`;
  }
  if (!url.hostname) return `broker URL "${text}" has no host`;
  if (url.pathname !== "" && url.pathname !== "/") {
    return `broker URL "${text}" has a path: MQTT over TCP takes none (WebSockets are not supported)`;
  }
  const port = url.port ? Number(url.port) : protocol === "mqtts" ? 8883 : 1883;
  // URL keeps IPv6 brackets in hostname; the socket API wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return { protocol, host, port, text };
}

const urls = z
  .union([z.string(), z.array(z.string()).min(1, "expected at least one broker URL")])
  .describe(
    "Broker URL (mqtt://host:port, mqtts://host:port), or a list of them tried in turn for fail-over",
  )
  .transform((v, ctx) => {
    const list = typeof v === "string" ? v.split(",").map((s) => s.trim()) : v;
    const out: BrokerUrl[] = [];
    list.forEach((text, i) => {
      const parsed = brokerUrl(text);
      if (typeof parsed === "string") {
        ctx.addIssue({ code: "custom", message: parsed, path: typeof v === "string" ? [] : [i] });
      } else out.push(parsed);
    });
    return out;
  });

/** A duration that may also be written in days (`1d`), for session lifetimes. */
function longDuration(description: string) {
  return z.string().describe(description).transform((text, ctx) => {
    const days = /^(\d+)d$/.exec(text);
    const ms = days ? Number(days[1]) * DAY_MS : parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `invalid duration "${text}": expected a number with a unit, e.g. 30m, 12h, 1d`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

function topicName(description: string) {
  return z.string().describe(description).superRefine((s, ctx) => {
    const problem = findTopicProblem(s, { wildcards: false, emptyLevels: false });
    if (problem) {
      ctx.addIssue({
        code: "custom",
        message: `invalid topic "${s}": ${problem.reason}`,
        params: { offset: problem.offset },
      });
    }
  });
}

const qos = z.union([z.literal(0), z.literal(1)], { error: "expected QoS 0 or 1" }).describe(
  "Quality of service: 0 (at most once) or 1 (at least once, acknowledged)",
);

const auth = z
  .strictObject({
    username: z.string().min(1).describe("User name"),
    password: z.string().optional().describe("Password (use ${ENV_VAR} to keep it out of files)"),
  })
  .describe("Credentials sent in CONNECT; never printed");

const tls = z
  .strictObject({
    ca_file: z.string().min(1).optional().describe(
      "CA certificate(s) to verify the broker with (default: the system's trust store)",
    ),
    cert_file: z.string().min(1).optional().describe("Client certificate (with key_file)"),
    key_file: z.string().min(1).optional().describe("Client private key (with cert_file)"),
  })
  .describe("TLS settings; the broker's certificate and host name are always verified")
  .superRefine(certificatePair);

const reconnect = reconnectFields(
  "Attempts in a row before giving up (then Sluice exits 1); -1 retries forever",
)
  .describe(
    "Reconnect behaviour, also while the first connection is made; a connection the broker keeps " +
      "closing right after accepting it (e.g. a client id clash) backs off up to 5 minutes",
  );

const announcement = (what: string) =>
  z.strictObject({
    topic: topicName(`Topic of the ${what} message`),
    payload: z.string().default("").describe(`Payload of the ${what} message (text)`),
    qos: qos.default(1),
    retain: z.boolean().default(false).describe("Ask the broker to keep it for late subscribers"),
  });

const version = z
  .union([z.literal(5), z.literal("5"), z.literal("3.1.1")], {
    error: 'expected 5 or "3.1.1"',
  })
  .describe('MQTT protocol version: 5 or "3.1.1" (YAML reads 3.1.1 as text, so it can stay bare)')
  .transform((v) => (v === "3.1.1" ? 4 as const : 5 as const));

/** Schema of a `type: mqtt` connector declaration. */
export const mqttConnectorSchema = z.strictObject({
  url: urls.prefault("mqtt://127.0.0.1:1883"),
  client_id: z.string().min(1).max(65_535).optional().describe(
    "Client id; fixed so the broker finds this gateway's session again " +
      "(default: sluice-<hostname>-<connector name>). Two clients with one id throw each other out",
  ),
  clean_session: z.boolean().default(false).describe(
    "Start a fresh session on every connect; false (default) lets the broker keep subscriptions " +
      "and queue QoS 1 messages while Sluice is away",
  ),
  session_expiry: longDuration(
    "MQTT 5: how long the broker keeps the session after a disconnect (e.g. 12h, 1d); " +
      "ignored with clean_session: true",
  ).default(DAY_MS).refine((ms) => ms / 1000 <= MAX_SESSION_EXPIRY_S, {
    message: "session_expiry is too long: at most about 136 years",
  }),
  version: version.default(5),
  auth: auth.optional(),
  tls: tls.optional(),
  keepalive: duration("Interval of keep-alive pings; a dead link is noticed after 1.5 times it")
    .default(30_000).refine((ms) => ms >= 1000 && ms <= 65_535_000, {
      message: "keepalive must be between 1s and 65535s",
    }),
  connect_timeout: duration("Time allowed for one connection attempt (until CONNACK)").default(
    10_000,
  ),
  reconnect: reconnect.default({ wait: 2000, jitter: 500, max_attempts: -1 }),
  will: announcement("last-will").optional().describe(
    "Published by the broker when Sluice vanishes, and by Sluice itself on a graceful stop",
  ),
  birth: announcement("birth").optional().describe(
    "Published on every (re)connect, e.g. a retained `online` to pair with the will's `offline`",
  ),
  max_in_flight: z.int().min(1).max(65_535).default(256).describe(
    "QoS 1 messages received but not yet acknowledged (their sinks have not accepted them); " +
      "MQTT 5 Receive Maximum, so the broker holds back the rest and memory stays bounded",
  ),
  max_pending: size(
    "Bytes published by sinks on this connector and not yet confirmed (PUBACK or written) before " +
      "those sinks refuse events",
  ).default(8 * 1024 * 1024),
});

/** The parsed form of {@link mqttConnectorSchema}. */
export type MqttConnectorConfig = z.output<typeof mqttConnectorSchema>;

/** Schema of a pipeline `source:` on an mqtt connector. */
export const mqttSourceSchema = z.strictObject({
  topic: z.string().describe(
    "Topic filter to subscribe to; `+` matches one level, a final `#` any number of levels",
  ).superRefine((s, ctx) => {
    const problem = topicFilterProblem(s);
    if (problem) {
      ctx.addIssue({
        code: "custom",
        message: `invalid topic filter "${s}": ${problem.reason}`,
        params: { offset: problem.offset },
      });
    }
  }),
  qos: qos.default(1).describe(
    "0: at most once; 1 (default): each message is acknowledged to the broker only after every " +
      "sink accepted the event",
  ),
  format: z.enum(["json"]).default("json").describe("Payload format of the events"),
});

/** The parsed form of {@link mqttSourceSchema}. */
export type MqttSourceConfig = z.output<typeof mqttSourceSchema>;

/** Schema of a pipeline sink (or `dead_letter:`) on an mqtt connector. */
export const mqttSinkSchema = z.strictObject({
  topic: z.string().describe(
    "Topic to publish to; may be a template: {field.path} from the event, {_tokens[N]} of the " +
      "source subject or topic. No wildcards; a rendered `+`, `#`, `/` or empty level dead-letters " +
      "the event",
  ).superRefine((s, ctx) => {
    try {
      compileTemplate(s);
    } catch (e) {
      if (!(e instanceof TemplateSyntaxError)) throw e;
      ctx.addIssue({ code: "custom", message: e.message, params: { offset: e.offset } });
    }
  }),
  qos: qos.default(1).describe(
    "0: fire and forget; 1 (default): an event counts as sent once the broker acknowledged it",
  ),
  retain: z.boolean().default(false).describe("Ask the broker to keep the last message per topic"),
  pass_headers: z.boolean().default(false).describe(
    "Copy the source message's headers (NATS headers, MQTT 5 user properties) as MQTT 5 user properties",
  ),
});

/** The parsed form of {@link mqttSinkSchema}. */
export type MqttSinkConfig = z.output<typeof mqttSinkSchema>;
