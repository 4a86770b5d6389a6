/**
 * What became of one event in a pipeline's chain, shared by the pipeline and its acknowledging
 * path: the event to send, one of two markers, or a {@link Rejection}.
 *
 * @module
 */

/** Returned by the chain for an event a processor dropped. */
export const DROPPED: unique symbol = Symbol("dropped");

/** Returned by the chain for an event a window absorbed: it leaves later, in an aggregate. */
export const ABSORBED: unique symbol = Symbol("absorbed");

/** What became of one event in the chain (the event itself when it is to be sent). */
export type Outcome = unknown;

/** Returned by the chain for a message that cannot be handled (a poison message). */
export class Rejection {
  readonly kind: string;
  readonly reason: string;
  /** The status of the error reply in a `reply: true` pipeline: 400 invalid, 500 failure. */
  readonly status: number;
  /** True when trying again later can help: an acknowledging source naks instead of terming. */
  readonly retry: boolean;
  constructor(kind: string, reason: string, status: number, retry = false) {
    this.kind = kind;
    this.reason = reason;
    this.status = status;
    this.retry = retry;
  }
}

/** An error as one line of at most 200 characters, for logs and error headers. */
export function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ").slice(0, 200);
}
