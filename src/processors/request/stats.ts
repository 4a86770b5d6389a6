/**
 * Statistics of one `request` processor, kept as plain numbers on the event path and read by
 * health through {@link RequestStats.snapshot} (the `ProcessorStats` shape every kind shares).
 *
 * @module
 */
import type { HistogramSnapshot, ProcessorStats } from "../types.ts";

/** Upper bounds of the latency histogram in seconds, as Prometheus names its buckets. */
export const LATENCY_BOUNDS_SECONDS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** What happened to the requests of one processor. */
export class RequestStats {
  /** Requests sent. */
  requests = 0;
  /** Requests answered with a usable reply. */
  replies = 0;
  /** Requests that failed, for any reason (the next four, a malformed reply, a closed client). */
  errors = 0;
  /** Requests that got no reply in time. */
  timeouts = 0;
  /** Requests nobody listened to. */
  noResponders = 0;
  /** Requests a service answered with an error header. */
  errorReplies = 0;
  /** Events refused because `max_in_flight` requests were outstanding (no request was sent). */
  overloaded = 0;
  /** Events answered from the cache. */
  cacheHits = 0;
  /** Events that looked in the cache and sent a request. */
  cacheMisses = 0;
  /** Events that joined an identical request already in flight instead of sending their own. */
  coalesced = 0;
  /** Requests outstanding now (a gauge). */
  inFlight = 0;
  /** Replies held in the cache now (a gauge). */
  cacheEntries = 0;
  readonly #counts = new Array<number>(LATENCY_BOUNDS_SECONDS.length).fill(0);
  #sum = 0;
  #count = 0;

  /** Records the round trip of one completed request (reply or error reply), in milliseconds. */
  observe(ms: number): void {
    const s = ms / 1000;
    this.#sum += s;
    this.#count++;
    const bounds = LATENCY_BOUNDS_SECONDS;
    for (let i = 0; i < bounds.length; i++) if (s <= bounds[i]!) this.#counts[i]!++;
  }

  /**
   * A copy for health: counters by snake_case name, the gauges `in_flight` and `cache_entries`,
   * and the histogram `latency_seconds`.
   */
  snapshot(): ProcessorStats {
    const latency: HistogramSnapshot = {
      bounds: LATENCY_BOUNDS_SECONDS,
      counts: [...this.#counts],
      sum: this.#sum,
      count: this.#count,
    };
    return {
      counters: {
        requests: this.requests,
        replies: this.replies,
        errors: this.errors,
        timeouts: this.timeouts,
        no_responders: this.noResponders,
        error_replies: this.errorReplies,
        overloaded: this.overloaded,
        cache_hits: this.cacheHits,
        cache_misses: this.cacheMisses,
        coalesced: this.coalesced,
      },
      gauges: { in_flight: this.inFlight, cache_entries: this.cacheEntries },
      histograms: { latency_seconds: latency },
    };
  }
}
