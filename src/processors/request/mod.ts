/**
 * `- request: {connector, subject, ...}`: asks a service once per event and sets its JSON reply
 * into the event (enrichment). The connector's type must answer requests (`nats`); the subject
 * is a template in that type's sink syntax. A timeout, no responders or an error reply fails the
 * event (dead letter). See docs/request-reply.md.
 *
 * @module
 */
import * as z from "zod";
import { duration } from "../../config/fields.ts";
import type { AddressTemplate } from "../../engine/types.ts";
import { defineProcessorKind } from "../types.ts";
import { cel, fieldPath } from "../_fields.ts";
import { splitPath } from "../_path.ts";
import { RequestProcessor } from "./processor.ts";

/** Requests in flight at once per processor when `max_in_flight` is not set. */
export const DEFAULT_MAX_IN_FLIGHT = 256;
/** `timeout` when not set, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 1000;
/** `cache.max_entries` when not set. */
export const DEFAULT_CACHE_ENTRIES = 10_000;

const positive = (ms: number) => ms > 0;

const schema = z.strictObject({
  connector: z.string().min(1).describe("Connector that sends the request (type nats)"),
  subject: z.string().min(1).describe(
    "Subject of the request, a template like a sink subject: registry.lookup.{sensor}",
  ),
  body: cel("CEL expression giving the request JSON; default: the event").optional(),
  timeout: duration("How long to wait for the reply; then the event fails (dead letter)")
    .refine(positive, "expected a timeout above 0").default(DEFAULT_TIMEOUT_MS),
  into: fieldPath(
    "Field (dotted path) that gets the JSON reply; default: the reply replaces " +
      "the event",
  ).optional(),
  cache: z.strictObject({
    ttl: duration("How long a reply is reused").refine(positive, "expected a ttl above 0"),
    max_entries: z.int().min(1, "expected at least 1").default(DEFAULT_CACHE_ENTRIES)
      .describe("Most replies kept; the oldest go first"),
  }).optional().describe(
    "Reuse replies by subject and body, and join identical requests in flight",
  ),
  max_in_flight: z.int().min(1, "expected at least 1").max(100_000, "expected at most 100000")
    .default(DEFAULT_MAX_IN_FLIGHT).describe(
      "Most requests outstanding at once; an event over it fails (dead letter), or from " +
        "JetStream is redelivered",
    ),
}).describe("Ask a service once per event and set its reply into the event")
  .meta({
    examples: [{
      connector: "local",
      subject: "registry.lookup.{sensor}",
      body: '{"id": sensor}',
      timeout: "500ms",
      into: "meta",
      cache: { ttl: "5m", max_entries: 10000 },
    }],
  });

/** The parsed settings of a `request`. */
export type RequestConfig = z.output<typeof schema>;

/** Registration of `request`. */
export const requestKind = defineProcessorKind({
  kind: "request",
  summary: "Ask a NATS service per event and set its JSON reply into the event",
  schema,
  compile(config: RequestConfig, ctx) {
    const connector = ctx.connector(["connector"], config.connector);
    let ok = connector !== undefined;
    let subject: AddressTemplate | undefined;
    if (connector && (!connector.requests || !connector.compileAddress)) {
      ctx.problem(
        ["connector"],
        `connector "${config.connector}" is of type "${connector.type}", which cannot send ` +
          "requests: name a nats connector",
      );
      ok = false;
    } else if (connector?.compileAddress) {
      try {
        subject = connector.compileAddress(config.subject);
      } catch (e) {
        const offset = (e as { offset?: unknown }).offset;
        const message = `invalid subject: ${e instanceof Error ? e.message : String(e)}`;
        if (typeof offset === "number") {
          ctx.problemAt(["subject"], message, offset, config.subject);
        } else ctx.problem(["subject"], message);
        ok = false;
      }
    }
    const body = config.body === undefined ? undefined : ctx.expression(["body"], config.body);
    if (config.body !== undefined && !body) ok = false;
    if (!ok || !subject) return undefined;
    const plan = {
      connector: config.connector,
      subject,
      body,
      timeoutMs: config.timeout,
      into: config.into === undefined ? undefined : splitPath(config.into),
      cache: config.cache
        ? { ttlMs: config.cache.ttl, maxEntries: config.cache.max_entries }
        : undefined,
      maxInFlight: config.max_in_flight,
    };
    return {
      connectors: [config.connector],
      create: (resources) => new RequestProcessor(plan, resources),
    };
  },
});
