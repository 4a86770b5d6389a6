/**
 * Store-and-forward for any sink (`buffer:` on a sink). While the sink's connection is down, or a
 * send fails or overflows, events go to a durable {@link Outbox} instead of being lost; once the
 * connection is back they are sent from it in order. While the outbox holds anything, new events
 * are appended behind it, so the outbox never reorders what passes through it.
 *
 * A send that is buffered is accepted once the append is durable (fsync), so an acknowledging
 * source acks it only then. Replays are confirmed before they are removed from the outbox: by the
 * PubAck of a JetStream sink, by a flush (server PONG) of a core NATS sink. A replay interrupted by
 * a crash or a lost link is sent again: duplicates are possible, losses are not.
 *
 * Events a sink accepts synchronously (a core NATS sink: the client buffers them) are kept until a
 * flush after them comes back from the server. When the flush fails (the connection dropped, and
 * what the client or the network still held is gone) they go back into the outbox, so an uplink
 * killed mid-stream loses nothing; some of them may arrive twice.
 *
 * @module
 */
import type { HeaderSource } from "../filter/filter.ts";
import type { Logger } from "../log.ts";
import type { PipelineCounters } from "./counters.ts";
import type { AppendOutcome, Outbox, OutboxRecord, StoredRecord } from "./outbox.ts";
import type {
  HeaderValues,
  InboundMessage,
  SendFailure,
  SendReport,
  SendResult,
  Sink,
} from "./types.ts";

/** Events sent from the outbox per round; one round is confirmed before the next starts. */
const REPLAY_BATCH = 512;
/** How long a replay round waits for the server to confirm it before it is sent again. */
const CONFIRM_TIMEOUT_MS = 10_000;
/** How often an unavailable sink is looked at again. */
const READY_POLL_MS = 200;
/** Backoff after a failed replay round, doubled up to the maximum. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** Bytes sent directly but unconfirmed that start a confirmation at once. */
const CONFIRM_EVERY_BYTES = 64 * 1024;
/** Longest an event sent directly waits before a confirmation covering it starts. */
const CONFIRM_EVERY_MS = 50;
/** Warnings about a full outbox are rate-limited to one a period. */
const WARN_EVERY_MS = 30_000;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** What the health model shows about one outbox. */
export interface BufferHealth {
  /** Path of the outbox file. */
  path: string;
  /** Events waiting in the outbox. */
  events: number;
  /** Bytes of those events. */
  bytes: number;
  /** Events discarded by `drop_oldest` since start. */
  dropped: number;
  /** Whether events are being sent from the outbox now. */
  replaying: boolean;
}

/** Headers restored from the outbox, shaped like nats.js `MsgHdrs` as far as sinks read them. */
class StoredHeaders implements HeaderSource {
  readonly #entries: Map<string, string[]>;

  constructor(entries: [string, string[]][]) {
    this.#entries = new Map(entries);
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  get(name: string): string {
    return this.#entries.get(name)?.[0] ?? "";
  }

  values(name: string): string[] {
    return this.#entries.get(name) ?? [];
  }
}

function headerEntries(h: HeaderSource | undefined): [string, string[]][] | undefined {
  if (!h) return undefined;
  const values = (h as { values?: (k: string) => string[] }).values;
  const keys = h.keys();
  if (keys.length === 0) return undefined;
  return keys.map((k) => [k, typeof values === "function" ? values.call(h, k) : [h.get(k)]]);
}

/** A sink with a durable outbox in front of it. */
export class BufferedSink implements Sink {
  readonly #inner: Sink;
  readonly #outbox: Outbox;
  readonly #counters: PipelineCounters;
  readonly #log: Logger;
  #replay: Promise<void> | undefined;
  #closing = false;
  #wake: (() => void) | undefined;
  #warnedFullAt = 0;
  #refused = 0;
  #late: { outer: SendReport; report: SendReport } | undefined;
  /**
   * Events sent directly and not yet confirmed by a flush, as flat (event, msg, extra) triples so
   * that keeping them allocates nothing per event.
   */
  #sent: unknown[] = [];
  #sentBytes = 0;
  /** Bumped when `#sent` is put back into the outbox, so a late flush result is ignored. */
  #sentEpoch = 0;
  #confirming: Promise<void> | undefined;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param inner The sink events are finally sent to.
   * @param outbox The open outbox; the buffered sink closes it.
   * @param counters The pipeline's counters (buffered, replayed).
   * @param log Logger labelled with the pipeline.
   */
  constructor(inner: Sink, outbox: Outbox, counters: PipelineCounters, log: Logger) {
    this.#inner = inner;
    this.#outbox = outbox;
    this.#counters = counters;
    this.#log = log.with({ outbox: outbox.path });
    if (outbox.length > 0) {
      this.#log.info("outbox holds events from an earlier run; sending them first", {
        events: outbox.length,
        bytes: outbox.bytes,
      });
      this.#startReplay();
    }
  }

  /** What the health model shows. */
  health(): BufferHealth {
    return {
      path: this.#outbox.path,
      events: this.#outbox.length,
      bytes: this.#outbox.bytes,
      dropped: this.#outbox.dropped,
      replaying: this.#replay !== undefined,
    };
  }

  send(
    event: unknown,
    msg: InboundMessage,
    extra?: HeaderValues,
    report?: SendReport,
  ): SendResult {
    if (this.#replay !== undefined || this.#outbox.length > 0) {
      return this.#store(event, msg, extra);
    }
    if (this.#inner.ready?.() === false) {
      this.#log.info("sink unavailable, keeping events in the outbox", { reason: "disconnected" });
      return this.#store(event, msg, extra);
    }
    // A sink that confirms by itself reports a failure later; it then falls back into the outbox
    // as a failed promise would (an event, no extra headers: not a dead letter).
    const late = report && this.#inner.selfConfirming && event !== undefined && !extra
      ? this.#lateReport(report)
      : undefined;
    const result = this.#inner.send(event, msg, extra, late);
    if (result === undefined) {
      if (late) return undefined;
      this.#track(event, msg, extra);
      return undefined;
    }
    if (result instanceof Promise) {
      return result.then((failure) => this.#fallBack(failure, event, msg, extra));
    }
    return this.#fallBack(result, event, msg, extra);
  }

  /** Confirms what was sent directly (or puts it back into the outbox), then syncs the outbox. */
  async flush(): Promise<void> {
    // Sends still being confirmed by the sink itself (PubAcks) end first: a failure among them
    // falls back into the outbox, which the commit below then covers.
    if (this.#inner.selfConfirming) await this.#inner.flush();
    await this.#confirmAll();
    await this.#outbox.commit();
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#wake?.();
    await this.#replay;
    // Whatever the server has not confirmed stays in the outbox for the next run.
    await this.#confirmAll();
    const left = this.#outbox.length;
    this.#outbox.close();
    if (left > 0) {
      this.#log.info("outbox closed with events kept for the next run", { events: left });
    }
    await this.#inner.close?.();
  }

  /** The report given to the inner sink for `outer`: one object, made on the first send. */
  #lateReport(outer: SendReport): SendReport {
    if (this.#late?.outer !== outer) {
      this.#late = {
        outer,
        report: { failed: (msg, failure) => this.#failedLate(outer, msg, failure) },
      };
    }
    return this.#late.report;
  }

  /** A failure the inner sink learned late: into the outbox, or on to `outer` if that fails too. */
  #failedLate(outer: SendReport, msg: InboundMessage, failure: SendFailure): void {
    // `true` stands for the event, of which the outbox keeps only that there was one.
    const result = this.#fallBack(failure, true, msg, undefined);
    if (result instanceof Promise) result.then((f) => f && outer.failed(msg, f));
    else if (result) outer.failed(msg, result);
  }

  /** Keeps an event sent directly until a flush confirms it. */
  #track(event: unknown, msg: InboundMessage, extra: HeaderValues | undefined): void {
    this.#sent.push(event, msg, extra);
    this.#sentBytes += msg.data.length;
    if (this.#confirming !== undefined) return;
    if (this.#sentBytes >= CONFIRM_EVERY_BYTES) this.#confirmSent();
    else this.#confirmTimer ??= setTimeout(() => this.#confirmSent(), CONFIRM_EVERY_MS);
  }

  /** Starts one flush covering everything sent directly so far, unless one is running. */
  #confirmSent(): void {
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
    if (this.#confirming !== undefined || this.#sent.length === 0) return;
    const count = this.#sent.length;
    const epoch = this.#sentEpoch;
    this.#confirming = this.#inner.flush().then(
      () => {
        if (epoch !== this.#sentEpoch) return;
        this.#sent.splice(0, count);
        let bytes = 0;
        for (let i = 1; i < this.#sent.length; i += 3) {
          bytes += (this.#sent[i] as InboundMessage).data.length;
        }
        this.#sentBytes = bytes;
      },
      (e: unknown) => epoch === this.#sentEpoch ? this.#requeue(e) : undefined,
    ).finally(() => {
      this.#confirming = undefined;
      if (this.#sent.length === 0 || this.#closing) return;
      if (this.#sentBytes >= CONFIRM_EVERY_BYTES) this.#confirmSent();
      else this.#confirmTimer ??= setTimeout(() => this.#confirmSent(), CONFIRM_EVERY_MS);
    });
  }

  /** Resolves once everything sent directly is confirmed or back in the outbox. */
  async #confirmAll(): Promise<void> {
    while (this.#confirming !== undefined || this.#sent.length > 0) {
      if (this.#confirming === undefined) this.#confirmSent();
      await this.#confirming;
    }
  }

  /** The flush after them failed: the client or the network may have lost them; store them. */
  async #requeue(e: unknown): Promise<void> {
    const sent = this.#sent;
    this.#sent = [];
    this.#sentBytes = 0;
    this.#sentEpoch++;
    this.#log.warn(
      "server did not confirm events sent before the connection dropped; keeping them in the outbox",
      {
        events: sent.length / 3,
        error: e instanceof Error ? e.message : String(e),
      },
    );
    const stored: SendResult[] = [];
    for (let i = 0; i < sent.length; i += 3) {
      stored.push(
        this.#store(
          sent[i],
          sent[i + 1] as InboundMessage,
          sent[i + 2] as HeaderValues | undefined,
        ),
      );
    }
    await Promise.all(stored);
  }

  #fallBack(
    failure: SendFailure | undefined,
    event: unknown,
    msg: InboundMessage,
    extra: HeaderValues | undefined,
  ): SendResult {
    // Template and rejected failures are properties of the event: storing it would not help.
    if (failure === undefined || failure.kind === "template" || failure.kind === "rejected") {
      return failure;
    }
    if (this.#replay === undefined && this.#outbox.length === 0) {
      this.#log.info("sink unavailable, keeping events in the outbox", {
        reason: `${failure.kind}: ${failure.reason}`,
      });
    }
    return this.#store(event, msg, extra);
  }

  #store(event: unknown, msg: InboundMessage, extra: HeaderValues | undefined): SendResult {
    const record: OutboxRecord = {
      subject: storedSubject(msg),
      data: msg.data,
      headers: headerEntries(msg.headers),
      extra: extra ? { ...extra } : undefined,
      hasEvent: event !== undefined,
    };
    const appended = this.#outbox.append(record);
    this.#startReplay();
    return appended.then((outcome) => this.#stored(outcome));
  }

  #stored(outcome: AppendOutcome): SendFailure | undefined {
    if (outcome === "stored") {
      this.#counters.buffered++;
      return undefined;
    }
    this.#refused++;
    const now = Date.now();
    if (now - this.#warnedFullAt >= WARN_EVERY_MS) {
      this.#warnedFullAt = now;
      this.#log.warn(outcome === "full" ? "outbox full, refusing events" : "outbox write failed", {
        events: this.#outbox.length,
        bytes: this.#outbox.bytes,
        refused_since_last_warning: this.#refused,
      });
      this.#refused = 0;
    }
    return outcome === "full"
      ? { kind: "overflow", reason: `outbox "${this.#outbox.path}" is full` }
      : { kind: "error", reason: `cannot write to outbox "${this.#outbox.path}"` };
  }

  #startReplay(): void {
    if (this.#replay !== undefined || this.#closing) return;
    this.#replay = this.#replayLoop().then(
      () => {
        this.#replay = undefined;
        // Appends made while the loop was ending must not be left behind.
        if (this.#outbox.length > 0) this.#startReplay();
      },
      (e: unknown) => {
        this.#replay = undefined;
        this.#log.error("outbox replay stopped; events stay in the outbox for the next run", {
          error: e instanceof Error ? e.message : String(e),
        });
      },
    );
  }

  async #replayLoop(): Promise<void> {
    let backoff = RETRY_MIN_MS;
    let announced = false;
    while (!this.#closing) {
      if (this.#inner.ready?.() === false) {
        await this.#pause(READY_POLL_MS);
        continue;
      }
      await this.#outbox.commit();
      const batch = this.#outbox.head(REPLAY_BATCH);
      if (batch.length === 0) {
        if (this.#outbox.length === 0) break;
        await this.#pause(READY_POLL_MS); // appends still waiting for room
        continue;
      }
      if (!announced) {
        announced = true;
        this.#log.info("outbox replaying", { events: this.#outbox.length });
      }
      if (await this.#send(batch)) {
        this.#outbox.remove((batch[batch.length - 1] as StoredRecord).seq);
        this.#counters.replayed += batch.length;
        backoff = RETRY_MIN_MS;
      } else {
        await this.#pause(backoff);
        backoff = Math.min(backoff * 2, RETRY_MAX_MS);
      }
    }
    if (announced && this.#outbox.length === 0) this.#log.info("outbox empty, sending directly");
  }

  /** Sends one round and waits for its confirmation; false means try the round again. */
  async #send(batch: StoredRecord[]): Promise<boolean> {
    const waiting: Promise<SendFailure | undefined>[] = [];
    for (const r of batch) {
      let event: unknown;
      if (r.hasEvent) {
        try {
          event = JSON.parse(decoder.decode(r.data));
        } catch {
          event = undefined;
        }
      }
      const msg: InboundMessage = {
        ...restoredSubject(r.subject),
        data: r.data,
        headers: r.headers ? new StoredHeaders(r.headers) : undefined,
      };
      const result = this.#inner.send(event, msg, r.extra);
      if (result === undefined) continue;
      if (result instanceof Promise) {
        waiting.push(result);
        continue;
      }
      if (!isPermanent(result)) return false;
      // A stored event the sink can never send is not retried forever.
      this.#log.warn("outbox event cannot be sent, discarded", { reason: result.reason });
    }
    const failures = await Promise.all(waiting);
    if (failures.some((f) => f !== undefined && !isPermanent(f))) return false;
    for (const f of failures) {
      if (f) this.#log.warn("outbox event cannot be sent, discarded", { reason: f.reason });
    }
    try {
      await withTimeout(this.#inner.flush(), CONFIRM_TIMEOUT_MS);
    } catch {
      return false;
    }
    return true;
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function isPermanent(f: SendFailure): boolean {
  return f.kind === "template" || f.kind === "rejected";
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no confirmation within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The subject as stored in the outbox. A message whose tokens are not "."-separated (an MQTT
 * topic) keeps its separator in a prefix "\u0001<separator>", so the outbox format stays as it
 * is: U+0001 never occurs in a NATS subject, and MQTT forbids control characters in topics in
 * spirit ("SHOULD NOT"); NUL cannot be used, SQLite text ends at it. (Interim, until the outbox
 * stores the separator in a column of its own.)
 */
function storedSubject(msg: InboundMessage): string {
  const sep = msg.tokenSeparator;
  return sep === undefined || sep === "." ? msg.subject : `\u0001${sep}${msg.subject}`;
}

/** Reverses {@link storedSubject}. */
function restoredSubject(stored: string): { subject: string; tokenSeparator?: string } {
  if (stored.charCodeAt(0) !== 1 || stored.length < 2) return { subject: stored };
  return { subject: stored.slice(2), tokenSeparator: stored.charAt(1) };
}
