/**
 * The path of an acknowledging source's events (a JetStream consumer): ack once every sink
 * accepted the event, nak on a sink failure so that it comes again, and dead-letter then term a
 * poison message so that it never does. Split from the pipeline because of what keeping it cheap
 * takes: under a flood every event waits here for its sink's confirmation (a flush's PONG, a
 * PubAck) for milliseconds, so whatever is allocated per event outlives a young-generation
 * collection and fills the old one (docs/performance.md, "What changed", items 10–12). The usual
 * cases therefore hold no promise of their own per event: events that await the same
 * confirmation share one batch, and a sink that confirms by itself reports each outcome.
 *
 * @module
 */
import type { Filter } from "../filter/filter.ts";
import type { Logger } from "../log.ts";
import type { PipelineCounters } from "./counters.ts";
import { origin } from "./outbound.ts";
import { ABSORBED, DROPPED, oneLine, type Outcome, Rejection } from "./outcome.ts";
import type {
  Acknowledger,
  InboundMessage,
  SendFailure,
  SendReport,
  SendResult,
  Sink,
} from "./types.ts";

/** What the acknowledging path needs of its pipeline. */
export interface AcknowledgingContext {
  readonly counters: PipelineCounters;
  readonly log: Logger;
  /** The pipeline's sinks, in declaration order. */
  sinks(): readonly Sink[];
  /** Each sink's `when` filter; undefined where it takes every event. */
  whens(): readonly (Filter | undefined)[];
  /** Whether sink `i`'s `when` holds; an evaluation error dead-letters the event. */
  holds(when: Filter, i: number, event: unknown, msg: InboundMessage): boolean;
  /** The message a sink sends for an event (the original one when the chain did not change it). */
  outbound(msg: InboundMessage, event: unknown, decoded: unknown): InboundMessage;
  /** Warns about a failing event (rate-limited). */
  warn(kind: string, reason: string, subject: string): void;
  /** Dead-letters an event when configured; counts and warns either way. */
  reject(msg: InboundMessage, kind: string, reason: string): SendResult;
  hasDeadLetter(): boolean;
}

/** Events of an acknowledging source that wait for one sink confirmation. */
interface ConfirmBatch {
  readonly confirmation: Promise<SendFailure | undefined>;
  readonly msgs: InboundMessage[];
  readonly ackers: Acknowledger[];
}

/** Settles the events of one pipeline whose source acknowledges them. */
export class AcknowledgingPath {
  readonly #p: AcknowledgingContext;
  /** Events waiting for the confirmation their sink returned last. */
  #confirming: ConfirmBatch | undefined;
  /** Acknowledgers of events whose one sink reports their outcome, by the message it was sent. */
  readonly #reported = new Map<InboundMessage, Acknowledger>();
  /** Where that sink reports: ack on confirmation, conclude (nak, poison) on a failure. */
  readonly #ackReport: SendReport = {
    confirmed: (out) => {
      const acker = this.#reported.get(out);
      if (acker === undefined) return;
      this.#reported.delete(out);
      acker.ack();
      this.#p.counters.acked++;
    },
    failed: (out, failure) => {
      const acker = this.#reported.get(out);
      if (acker === undefined) return;
      this.#reported.delete(out);
      const msg = origin(out);
      this.#conclude(msg, acker, [failure])?.catch((e) => this.#settleFailed(e, acker));
    },
  };

  constructor(context: AcknowledgingContext) {
    this.#p = context;
  }

  /**
   * The path of an acknowledging source: ack once every sink accepted the event (awaiting those
   * that confirm asynchronously), nak on a sink failure so it comes again, and for a poison
   * message dead-letter it and then term it so that it never comes again. Events a processor
   * dropped or a window absorbed are acknowledged.
   *
   * Most events take {@link AcknowledgingPath.handle}'s way, which holds no promise of its own per
   * event; this is the general one, for what it does not handle.
   */
  async settle(
    msg: InboundMessage,
    outcome: Outcome,
    decoded: unknown,
    acker: Acknowledger,
  ): Promise<void> {
    if (outcome instanceof Promise) outcome = await outcome;
    if (outcome instanceof Rejection && !outcome.retry) {
      // Awaited, so that an ordered pipeline's next event waits for the dead letter.
      await this.#poison(msg, outcome.kind, outcome.reason, acker);
      return;
    }
    if (this.#settled(msg, outcome, acker)) return;
    await this.#concludeLater(msg, acker, this.#sendConfirmed(msg, outcome, decoded));
  }

  /**
   * {@link AcknowledgingPath.settle} without a promise per event for the usual case: a synchronous
   * outcome and one sink that confirms asynchronously. Events waiting for the same confirmation (a
   * core sink's flush covers every publish made meanwhile) are kept in one batch with one
   * reaction; under a flood a promise, an async function and a reaction per event would all
   * outlive a young-generation collection and fill the old generation (docs/performance.md).
   */
  handle(msg: InboundMessage, outcome: Outcome, decoded: unknown, acker: Acknowledger): void {
    if (outcome instanceof Promise || outcome instanceof Rejection) {
      this.settle(msg, outcome, decoded, acker).catch((e) => this.#settleFailed(e, acker));
      return;
    }
    if (this.#settled(msg, outcome, acker)) return;
    const sinks = this.#p.sinks();
    const only = sinks.length === 1 && this.#p.whens()[0] === undefined ? sinks[0]! : undefined;
    if (only?.selfConfirming) {
      this.#sendReported(only, msg, outcome, decoded, acker);
      return;
    }
    let results: SendResult[];
    try {
      results = this.#sendConfirmed(msg, outcome, decoded);
    } catch (e) {
      this.#settleFailed(e, acker);
      return;
    }
    const first = results[0];
    if (results.length === 1 && first instanceof Promise) {
      this.#awaitConfirmation(first, msg, acker);
      return;
    }
    if (results.some((r) => r instanceof Promise)) {
      this.#concludeLater(msg, acker, results).catch((e) => this.#settleFailed(e, acker));
      return;
    }
    const done = this.#conclude(msg, acker, results as (SendFailure | undefined)[]);
    done?.catch((e) => this.#settleFailed(e, acker));
  }

  /** Handles what needs no sink: a dropped or absorbed event (ack), a rejection (poison). */
  #settled(msg: InboundMessage, outcome: Outcome, acker: Acknowledger): boolean {
    const c = this.#p.counters;
    if (outcome === DROPPED || outcome === ABSORBED) {
      acker.ack();
      c.acked++;
      return true;
    }
    if (outcome instanceof Rejection) {
      if (outcome.retry) {
        // Our own back-pressure (a request's max_in_flight), not the event's fault: later.
        this.#p.warn(outcome.kind, `${outcome.reason}; will be redelivered`, msg.subject);
        acker.nak();
        c.nacked++;
      } else {
        this.#poison(msg, outcome.kind, outcome.reason, acker).catch((e) =>
          this.#settleFailed(e, acker)
        );
      }
      return true;
    }
    return false;
  }

  /** Sends a passing event to every sink whose `when` holds; the results, in sink order. */
  #sendConfirmed(msg: InboundMessage, outcome: unknown, decoded: unknown): SendResult[] {
    this.#p.counters.passed++;
    const results: SendResult[] = [];
    const sinks = this.#p.sinks();
    const whens = this.#p.whens();
    let out: InboundMessage | undefined;
    for (let i = 0; i < sinks.length; i++) {
      const when = whens[i];
      if (when !== undefined && !this.#p.holds(when, i, outcome, msg)) continue;
      out ??= this.#p.outbound(msg, outcome, decoded);
      results.push(sinks[i]!.send(outcome, out));
    }
    return results;
  }

  /**
   * The one sink confirms events itself (a JetStream sink): it reports each event's outcome
   * through `#ackReport`, and the event's acknowledger waits in a map meanwhile.
   */
  #sendReported(
    sink: Sink,
    msg: InboundMessage,
    outcome: unknown,
    decoded: unknown,
    acker: Acknowledger,
  ): void {
    this.#p.counters.passed++;
    const out = this.#p.outbound(msg, outcome, decoded);
    let result: SendResult;
    try {
      result = sink.send(outcome, out, undefined, this.#ackReport);
    } catch (e) {
      this.#settleFailed(e, acker);
      return;
    }
    if (result === undefined) this.#reported.set(out, acker);
    else if (result instanceof Promise) this.#awaitConfirmation(result, msg, acker);
    else this.#conclude(msg, acker, [result])?.catch((e) => this.#settleFailed(e, acker));
  }

  /** Adds an event to the batch waiting for `confirmation`, starting one if it is another. */
  #awaitConfirmation(
    confirmation: Promise<SendFailure | undefined>,
    msg: InboundMessage,
    acker: Acknowledger,
  ): void {
    let batch = this.#confirming;
    if (batch === undefined || batch.confirmation !== confirmation) {
      const started: ConfirmBatch = { confirmation, msgs: [], ackers: [] };
      this.#confirming = batch = started;
      confirmation.then((failure) => {
        if (this.#confirming === started) this.#confirming = undefined;
        for (let i = 0; i < started.msgs.length; i++) {
          const ack = started.ackers[i]!;
          try {
            this.#conclude(started.msgs[i]!, ack, [failure])?.catch((e) =>
              this.#settleFailed(e, ack)
            );
          } catch (e) {
            this.#settleFailed(e, ack);
          }
        }
      }, (e: unknown) => {
        // A sink's confirmation never rejects (SendResult); should one, the events come again.
        if (this.#confirming === started) this.#confirming = undefined;
        for (const ack of started.ackers) this.#settleFailed(e, ack);
      });
    }
    batch.msgs.push(msg);
    batch.ackers.push(acker);
  }

  async #concludeLater(
    msg: InboundMessage,
    acker: Acknowledger,
    results: SendResult[],
  ): Promise<void> {
    const failures: (SendFailure | undefined)[] = [];
    for (const result of results) failures.push(result instanceof Promise ? await result : result);
    await this.#conclude(msg, acker, failures);
  }

  /** Acks, naks or poisons an event once every sink's result is known. */
  #conclude(
    msg: InboundMessage,
    acker: Acknowledger,
    failures: readonly (SendFailure | undefined)[],
  ): Promise<void> | undefined {
    const c = this.#p.counters;
    let retry: SendFailure | undefined;
    let poison: SendFailure | undefined;
    for (const failure of failures) {
      if (failure === undefined) continue;
      if (failure.kind === "template" || failure.kind === "rejected") {
        if (failure.kind === "template") c.templateErrors++;
        else c.sinkErrors++;
        poison ??= failure;
      } else {
        c.sinkErrors++;
        retry ??= failure;
      }
    }
    if (retry) {
      // Sinks that did accept it get it again on redelivery: at-least-once, not exactly-once.
      this.#p.warn(
        retry.kind,
        `sink ${retry.kind}: ${retry.reason}; will be redelivered`,
        msg.subject,
      );
      acker.nak();
      c.nacked++;
    } else if (poison) {
      const reason = poison.kind === "template" ? poison.reason : `sink rejected: ${poison.reason}`;
      return this.#poison(msg, poison.kind, reason, acker);
    } else {
      acker.ack();
      c.acked++;
    }
    return undefined;
  }

  /** Only a bug gets here; redelivery is the safe outcome. */
  #settleFailed(e: unknown, acker: Acknowledger): void {
    this.#p.log.error("event handling failed", { error: oneLine(e) });
    acker.nak();
  }

  /** Dead-letters a message that can never be handled, then terms it (or naks it if the dead letter failed). */
  async #poison(msg: InboundMessage, kind: string, reason: string, acker: Acknowledger) {
    const result = this.#p.reject(msg, kind, reason);
    const failure = result instanceof Promise ? await result : result;
    if (failure && this.#p.hasDeadLetter()) {
      // Terminating it now would lose it: keep it in the stream until the dead letter works.
      acker.nak();
      this.#p.counters.nacked++;
      return;
    }
    acker.term(reason);
    this.#p.counters.terminated++;
  }
}
