/**
 * A JetStream stream as a pipeline source (`source.jetstream`): a durable pull consumer consumed
 * in batches with nats.js `consume()`. Every message is handed to the engine with an
 * {@link Acknowledger}; the engine acks it once every sink accepted the event, naks it on a sink
 * failure (redelivered after a backoff that grows with each delivery) and terms a poison message.
 * The consumer's `max_ack_pending` bounds what is in flight, and so memory.
 *
 * Sluice creates the durable consumer when it is missing (`create_consumer`, on by default) but
 * creates the stream only when told to (`create_stream`, off by default): a stream is storage an
 * operator sizes and owns.
 *
 * @module
 */
import type { ConsumerConfig, ConsumerMessages, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Acknowledger, MessageHandler, Source } from "../../engine/types.ts";
import { RuntimeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { errorText, type NatsConnector } from "./client.ts";
import type { JetStreamSourceConfig } from "./schema.ts";

/** Pull batch when `batch` is not set: large enough to amortise requests, capped by in-flight. */
const DEFAULT_BATCH = 256;
/** Longest redelivery delay as a multiple of `nak_delay`. */
const MAX_NAK_FACTOR = 60;
/** How long `drain()` waits for messages in flight when the sinks do not answer. */
const MIN_DRAIN_WAIT_MS = 10_000;

const NANOS_PER_MS = 1_000_000;

/** The JetStream client library, imported when a JetStream source starts. */
type JetStreamLibrary = typeof import("./jetstream_library.ts");

/** Consumes one stream through a durable pull consumer. */
export class JetStreamSource implements Source {
  /** Messages are acked, naked or termed by the engine: its sinks must confirm what they send. */
  readonly acknowledges = true;
  readonly #connector: NatsConnector;
  readonly #subject: string;
  readonly #config: JetStreamSourceConfig;
  readonly #log: Logger;
  #messages: ConsumerMessages | undefined;
  #inFlight = 0;
  #idle: PromiseWithResolvers<void> | undefined;

  /**
   * @param connector The shared client; open while the source is used.
   * @param subject The source subject: the consumer's filter (and the subject of a created stream).
   * @param config The `jetstream:` settings.
   * @param log Logger labelled with the pipeline.
   */
  constructor(
    connector: NatsConnector,
    subject: string,
    config: JetStreamSourceConfig,
    log: Logger,
  ) {
    this.#connector = connector;
    this.#subject = subject;
    this.#config = config;
    this.#log = log.with({ stream: config.stream, durable: config.durable });
  }

  async start(handler: MessageHandler): Promise<void> {
    const nc = this.#connector.connection;
    // Loaded here, not at start-up: a gateway without JetStream does not hold the client.
    const js = await import("./jetstream_library.ts");
    let jsm: JetStreamManager;
    try {
      jsm = await js.jetstreamManager(nc);
    } catch (e) {
      throw new RuntimeError(
        "jetstream",
        `Connector "${this.#connector.name}": JetStream is not available: ${errorText(e)}`,
        { cause: e },
      );
    }
    await this.#ensureStream(jsm, js);
    await this.#ensureConsumer(jsm, js);
    const consumer = await js.jetstream(nc).consumers.get(
      this.#config.stream,
      this.#config.durable,
    );
    const batch = this.#config.batch ?? Math.min(this.#config.max_ack_pending, DEFAULT_BATCH);
    this.#messages = await consumer.consume({
      max_messages: batch,
      callback: (m) => this.#deliver(m, handler),
    });
    this.#watch(this.#messages);
    this.#log.info("jetstream consumer started", { batch });
  }

  pending(): number {
    return this.#inFlight;
  }

  /**
   * Stops pulling, then waits (bounded by the ack wait) until every message handed to the engine
   * is settled, so its ack is sent before the connection drains. What is not settled in time is
   * redelivered by the server after `ack_wait`.
   */
  async drain(): Promise<void> {
    const messages = this.#messages;
    this.#messages = undefined;
    if (!messages) return;
    try {
      await messages.close();
    } catch {
      // The connection is gone: the server redelivers whatever was not acked.
    }
    if (this.#inFlight === 0) return;
    const wait = Math.max(this.#config.ack_wait, MIN_DRAIN_WAIT_MS);
    this.#idle ??= Promise.withResolvers<void>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), wait);
    });
    const late = await Promise.race([this.#idle.promise.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      this.#log.warn("stopping with messages not yet settled; the server will redeliver them", {
        in_flight: this.#inFlight,
      });
    }
  }

  #deliver(m: JsMsg, handler: MessageHandler): void {
    // An exception escaping this callback would end the consumer; the engine must not throw.
    this.#inFlight++;
    try {
      handler(m, this.#acker(m));
    } catch (e) {
      this.#log.error("event handler failed", { error: errorText(e) });
    }
  }

  #acker(m: JsMsg): Acknowledger {
    return new MessageAcker(m, this.#settlement);
  }

  /** What every {@link MessageAcker} of this source reports to: made once, not per message. */
  readonly #settlement: Settlement = {
    nakDelay: (m) => this.#nakDelay(m),
    settled: () => {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#idle?.resolve();
    },
    failed: (e) => {
      // The connection closed: the server redelivers the message after ack_wait.
      this.#log.debug("cannot settle message", { error: errorText(e) });
    },
  };

  #nakDelay(m: JsMsg): number {
    const deliveries = Math.max(1, m.info.deliveryCount);
    const factor = Math.min(2 ** (deliveries - 1), MAX_NAK_FACTOR);
    return this.#config.nak_delay * factor;
  }

  async #ensureStream(jsm: JetStreamManager, js: JetStreamLibrary): Promise<void> {
    const { stream, create_stream: create } = this.#config;
    try {
      await jsm.streams.info(stream);
      return;
    } catch (e) {
      if (!isNotFound(e)) throw this.#error(`cannot look up stream "${stream}"`, e);
      if (!create) {
        throw new RuntimeError(
          "jetstream",
          `Connector "${this.#connector.name}": stream "${stream}" does not exist: create it ` +
            `(e.g. nats stream add ${stream} --subjects '${this.#subject}'), or set ` +
            `create_stream: true on the source`,
        );
      }
    }
    try {
      await jsm.streams.add({
        name: stream,
        subjects: [this.#subject],
        storage: js.StorageType.File,
      });
      this.#log.info("jetstream stream created", { subjects: this.#subject });
    } catch (e) {
      throw this.#error(`cannot create stream "${stream}"`, e);
    }
  }

  async #ensureConsumer(jsm: JetStreamManager, js: JetStreamLibrary): Promise<void> {
    const c = this.#config;
    const wanted: Partial<ConsumerConfig> = {
      "durable_name": c.durable,
      "ack_policy": js.AckPolicy.Explicit,
      "deliver_policy": c.deliver === "new"
        ? js.DeliverPolicy.New
        : c.deliver === "last"
        ? js.DeliverPolicy.Last
        : js.DeliverPolicy.All,
      "ack_wait": c.ack_wait * NANOS_PER_MS,
      "max_ack_pending": c.max_ack_pending,
      "max_deliver": c.max_deliver,
      "filter_subject": this.#subject,
    };
    let existing: ConsumerConfig | undefined;
    try {
      existing = (await jsm.consumers.info(c.stream, c.durable)).config;
    } catch (e) {
      if (!isNotFound(e)) throw this.#error(`cannot look up consumer "${c.durable}"`, e);
    }
    if (existing === undefined) {
      if (!c.create_consumer) {
        throw new RuntimeError(
          "jetstream",
          `Connector "${this.#connector.name}": consumer "${c.durable}" of stream "${c.stream}" ` +
            "does not exist: create it, or set create_consumer: true on the source",
        );
      }
      try {
        await jsm.consumers.add(c.stream, wanted);
      } catch (e) {
        throw this.#error(`cannot create consumer "${c.durable}"`, e);
      }
      this.#log.info("jetstream consumer created", { deliver: c.deliver });
      return;
    }
    if ((existing.filter_subject ?? "") !== this.#subject) {
      this.#log.warn("existing consumer filters another subject; it is used as it is", {
        "filter_subject": existing.filter_subject ?? "",
        subject: this.#subject,
      });
    }
    if (
      existing.ack_wait !== wanted.ack_wait ||
      existing.max_ack_pending !== wanted.max_ack_pending ||
      existing.max_deliver !== wanted.max_deliver
    ) {
      try {
        await jsm.consumers.update(c.stream, c.durable, {
          "ack_wait": wanted.ack_wait!,
          "max_ack_pending": wanted.max_ack_pending!,
          "max_deliver": wanted.max_deliver!,
        });
        this.#log.info("jetstream consumer updated", {
          ack_wait_ms: c.ack_wait,
          "max_ack_pending": c.max_ack_pending,
        });
      } catch (e) {
        this.#log.warn("cannot update consumer settings; using them as they are", {
          error: errorText(e),
        });
      }
    }
  }

  #watch(messages: ConsumerMessages): void {
    (async () => {
      for await (const s of messages.status()) {
        switch (s.type) {
          case "consumer_deleted":
          case "consumer_not_found":
          case "stream_not_found":
            this.#log.warn("jetstream consumer unavailable; retrying", { status: s.type });
            break;
          case "heartbeats_missed":
            this.#log.debug("jetstream heartbeats missed", { count: s.count });
            break;
        }
      }
    })().catch(() => {});
  }

  #error(what: string, e: unknown): RuntimeError {
    return new RuntimeError(
      "jetstream",
      `Connector "${this.#connector.name}": ${what}: ${errorText(e)}`,
      { cause: e },
    );
  }
}

function isNotFound(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (code === 10059 || code === 10014) return true;
  return /not found/i.test(errorText(e));
}

/** How a {@link MessageAcker} reaches its source. */
interface Settlement {
  nakDelay(m: JsMsg): number;
  /** The message was settled (or could not be, the connection being closed). */
  settled(): void;
  failed(e: unknown): void;
}

/**
 * Settles one message, once: one object per message in flight (not a closure per action), since
 * under a flood every message's acknowledger lives until its sinks confirm.
 */
class MessageAcker implements Acknowledger {
  readonly #m: JsMsg;
  readonly #to: Settlement;
  #settled = false;

  constructor(m: JsMsg, to: Settlement) {
    this.#m = m;
    this.#to = to;
  }

  ack(): void {
    if (this.#begin()) this.#run(() => this.#m.ack());
  }

  nak(): void {
    if (this.#begin()) this.#run(() => this.#m.nak(this.#to.nakDelay(this.#m)));
  }

  // No reason on the wire: nats-server before 2.10 ignores a "+TERM <reason>" it cannot parse,
  // and the message would stay pending. The reason is in the dead letter's header.
  term(): void {
    if (this.#begin()) this.#run(() => this.#m.term());
  }

  #begin(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    return true;
  }

  #run(action: () => void): void {
    try {
      action();
    } catch (e) {
      this.#to.failed(e);
    }
    this.#to.settled();
  }
}
