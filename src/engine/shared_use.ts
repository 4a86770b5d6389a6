/**
 * Reference counting of one shared connection, the same for every connector type: the first
 * `acquire()` opens it, later ones wait for that same opening, and the last `release()` closes it.
 * A failed opening lets its waiters go, and the next `acquire()` tries again.
 *
 * @module
 */

/** The users of one shared connection. */
export class SharedUse {
  #users = 0;
  #opening: Promise<void> | undefined;
  readonly #open: (signal?: AbortSignal) => Promise<void>;
  readonly #close: () => Promise<void>;

  /**
   * @param open Opens the connection; resolves once it is usable.
   * @param close Closes it; called when the last user lets go.
   */
  constructor(open: (signal?: AbortSignal) => Promise<void>, close: () => Promise<void>) {
    this.#open = open;
    this.#close = close;
  }

  /** How many hold the connection now. */
  get users(): number {
    return this.#users;
  }

  /** Takes a reference; the first one opens the connection. */
  async acquire(signal?: AbortSignal): Promise<void> {
    this.#users++;
    try {
      this.#opening ??= this.#open(signal);
      await this.#opening;
    } catch (e) {
      this.#users--;
      if (this.#users === 0) this.#opening = undefined;
      throw e;
    }
  }

  /** Drops a reference; the last one closes the connection. */
  async release(): Promise<void> {
    if (this.#users === 0) return;
    this.#users--;
    if (this.#users > 0) return;
    this.#opening = undefined;
    await this.#close();
  }

  /** Forgets the connection after it closed by itself, so the next `acquire()` opens anew. */
  reset(): void {
    this.#opening = undefined;
  }
}
