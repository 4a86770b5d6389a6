/**
 * Waiting without sleeping: every wait in the integration tests is on an event (a message, a
 * log line, a status change) and is bounded by a timeout that scales with the machine.
 *
 * @module
 */

/** Environment variable that multiplies every test timeout, e.g. `10` under emulation. */
export const TIMEOUT_SCALE_ENV = "SLUICE_TEST_TIMEOUT_SCALE";

/**
 * The factor all test timeouts are multiplied by, from `SLUICE_TEST_TIMEOUT_SCALE`.
 *
 * @returns The scale; 1 when the variable is unset or empty.
 * @throws {RangeError} When the variable is set but not a positive number.
 *
 * @example Read the scale
 * ```ts ignore
 * Deno.env.set("SLUICE_TEST_TIMEOUT_SCALE", "10");
 * timeoutScale(); // 10
 * ```
 */
export function timeoutScale(): number {
  const raw = Deno.env.get(TIMEOUT_SCALE_ENV)?.trim();
  if (raw === undefined || raw === "") return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new RangeError(`Cannot use ${TIMEOUT_SCALE_ENV}="${raw}": expected a positive number`);
  }
  return scale;
}

/**
 * Scales a timeout by {@linkcode timeoutScale}.
 *
 * @param ms The timeout on an ordinary machine, in milliseconds.
 * @returns The timeout to use here, in whole milliseconds.
 */
export function scaled(ms: number): number {
  return Math.ceil(ms * timeoutScale());
}

/** A wait that did not end in time. */
export class TimeoutError extends Error {
  /** Stable code: "timeout". */
  readonly code = "timeout";
  /** What was waited for. */
  readonly what: string;
  /** The time waited, after scaling, in milliseconds. */
  readonly ms: number;

  /**
   * @param what What was waited for, e.g. `Sluice to log "started"`.
   * @param ms The time waited, after scaling, in milliseconds.
   * @param unscaledMs The time asked for, before scaling, shown when it differs.
   */
  constructor(what: string, ms: number, unscaledMs: number = ms) {
    const how = ms === unscaledMs
      ? `${ms} ms`
      : `${ms} ms (${unscaledMs} ms × ${TIMEOUT_SCALE_ENV})`;
    super(`Timed out after ${how} waiting for ${what}`);
    this.name = "TimeoutError";
    this.what = what;
    this.ms = ms;
  }
}

/**
 * Waits for `promise`, but no longer than `ms` times {@linkcode timeoutScale}. The timer is
 * cleared either way, so no timer outlives the wait.
 *
 * @param promise What to wait for.
 * @param ms The bound on an ordinary machine, in milliseconds.
 * @param what What is waited for, for the error message.
 * @returns The value of `promise`.
 * @throws {TimeoutError} When the time runs out first.
 *
 * @example Bound a wait
 * ```ts ignore
 * const msg = await withTimeout(firstMessage, 5_000, 'a message on "alerts.>"');
 * ```
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const limit = scaled(ms);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, limit, ms)), limit);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A promise with its `resolve` and `reject` exposed, for events that arrive in callbacks.
 * Settling it a second time is ignored.
 *
 * @example Wait for a status event
 * ```ts ignore
 * const reconnected = new Deferred<void>();
 * onStatus = (s) => { if (s.type === "reconnect") reconnected.resolve(); };
 * await withTimeout(reconnected.promise, 10_000, "a reconnect");
 * ```
 */
export class Deferred<T> {
  /** Settles with the first `resolve` or `reject`. */
  readonly promise: Promise<T>;
  #resolve: (value: T) => void;
  #reject: (reason: unknown) => void;
  #settled = false;

  constructor() {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.promise = promise;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Whether `resolve` or `reject` has been called. */
  get settled(): boolean {
    return this.#settled;
  }

  /**
   * Fulfils the promise, unless it is already settled.
   *
   * @param value The value.
   */
  resolve(value: T): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(value);
  }

  /**
   * Rejects the promise, unless it is already settled.
   *
   * @param reason The error.
   */
  reject(reason: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(reason);
  }

  /**
   * Waits for the promise, bounded like {@linkcode withTimeout}.
   *
   * @param ms The bound on an ordinary machine, in milliseconds.
   * @param what What is waited for, for the error message.
   * @returns The value.
   * @throws {TimeoutError} When the time runs out first.
   */
  wait(ms: number, what: string): Promise<T> {
    return withTimeout(this.promise, ms, what);
  }
}

/**
 * Counts down to zero; waiters are released when it gets there. For "N messages arrived" when
 * the messages themselves do not matter (otherwise use {@linkcode Collector}).
 *
 * @example Wait for three messages
 * ```ts ignore
 * const latch = new Latch(3);
 * nc.subscribe("alerts.>", { callback: () => latch.countDown() });
 * await latch.wait(5_000, "3 alerts");
 * ```
 */
export class Latch {
  #remaining: number;
  readonly #done = new Deferred<void>();

  /**
   * @param count How many counts release the latch; 0 is released already.
   * @throws {RangeError} When `count` is negative or not an integer.
   */
  constructor(count: number) {
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`Cannot create a latch of ${count}: expected a non-negative integer`);
    }
    this.#remaining = count;
    if (count === 0) this.#done.resolve();
  }

  /** Counts still missing; never below 0. */
  get remaining(): number {
    return this.#remaining;
  }

  /**
   * Counts down by `n`, releasing the waiters at zero. Counts after zero are ignored.
   *
   * @param n How many to count.
   */
  countDown(n = 1): void {
    this.#remaining = Math.max(0, this.#remaining - n);
    if (this.#remaining === 0) this.#done.resolve();
  }

  /**
   * Waits for the count to reach zero.
   *
   * @param ms The bound on an ordinary machine, in milliseconds.
   * @param what What is waited for, for the error message.
   * @throws {TimeoutError} When the time runs out first; the message says how many were missing.
   */
  async wait(ms: number, what: string): Promise<void> {
    try {
      await withTimeout(this.#done.promise, ms, what);
    } catch (error) {
      if (error instanceof TimeoutError) {
        throw new TimeoutError(`${what} (${this.#remaining} still missing)`, error.ms, ms);
      }
      throw error;
    }
  }
}

/**
 * Collects items that arrive in callbacks and lets a test wait for a count of them or for one
 * that matches, including items that arrived before the wait began.
 *
 * @example Collect messages
 * ```ts ignore
 * const got = new Collector<string>();
 * nc.subscribe("sites.>", { callback: (_, m) => got.push(m.subject) });
 * const subjects = await got.waitForCount(2, 5_000, "2 site messages");
 * ```
 */
export class Collector<T> {
  readonly #items: T[] = [];
  readonly #waiters = new Set<() => void>();

  /** Everything collected so far, in arrival order. */
  get items(): readonly T[] {
    return this.#items;
  }

  /**
   * Adds an item and wakes the waiters.
   *
   * @param item The item.
   */
  push(item: T): void {
    this.#items.push(item);
    for (const wake of [...this.#waiters]) wake();
  }

  /**
   * Waits until at least `count` items have arrived.
   *
   * @param count How many items.
   * @param ms The bound on an ordinary machine, in milliseconds.
   * @param what What is waited for, for the error message.
   * @returns The first `count` items.
   * @throws {TimeoutError} When the time runs out first; the message says how many arrived.
   */
  async waitForCount(count: number, ms: number, what: string): Promise<T[]> {
    await this.#until(
      () => this.#items.length >= count,
      ms,
      () => `${what} (got ${this.#items.length} of ${count})`,
    );
    return this.#items.slice(0, count);
  }

  /**
   * Waits for the first item that satisfies `predicate`.
   *
   * @param predicate The test.
   * @param ms The bound on an ordinary machine, in milliseconds.
   * @param what What is waited for, for the error message.
   * @returns The first matching item.
   * @throws {TimeoutError} When the time runs out first.
   */
  async waitFor(predicate: (item: T) => boolean, ms: number, what: string): Promise<T> {
    let found: T | undefined;
    let seen = 0;
    const match = (): boolean => {
      for (; seen < this.#items.length; seen++) {
        const item = this.#items[seen] as T;
        if (predicate(item)) {
          found = item;
          return true;
        }
      }
      return false;
    };
    await this.#until(match, ms, () => `${what} (none of ${this.#items.length} matched)`);
    return found as T;
  }

  async #until(done: () => boolean, ms: number, what: () => string): Promise<void> {
    if (done()) return;
    const ready = new Deferred<void>();
    const wake = () => {
      if (done()) ready.resolve();
    };
    this.#waiters.add(wake);
    try {
      await withTimeout(ready.promise, ms, "");
    } catch (error) {
      if (error instanceof TimeoutError) throw new TimeoutError(what(), error.ms, ms);
      throw error;
    } finally {
      this.#waiters.delete(wake);
    }
  }
}

/**
 * Polls `probe` until it returns a value other than `undefined`. Only for conditions that have
 * no event to wait on (a file appearing, the server's monitoring view catching up).
 *
 * @param probe Returns the awaited value, or `undefined` while it is not there yet.
 * @param ms The bound on an ordinary machine, in milliseconds.
 * @param what What is waited for, for the error message.
 * @param intervalMs Pause between probes.
 * @returns The first value the probe returned.
 * @throws {TimeoutError} When the time runs out first.
 */
export async function pollUntil<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  ms: number,
  what: string,
  intervalMs = 25,
): Promise<T> {
  const limit = scaled(ms);
  const deadline = Date.now() + limit;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(what, limit, ms);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
