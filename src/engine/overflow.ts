/**
 * A connector refusing events while too much sent data is unconfirmed (`max_pending`): every
 * refusal is counted for health, and the state is logged once when it begins and once when it
 * ends, never per event. The same for every connector type.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { SendFailure } from "./types.ts";

/** The overflow state of one connector. */
export class Overflow {
  #count = 0;
  #active = false;
  readonly #log: Logger;
  readonly #peer: string;

  /**
   * @param log The connector's logger.
   * @param peer What confirms sent data, for the log line: "server", "broker".
   */
  constructor(log: Logger, peer: string) {
    this.#log = log;
    this.#peer = peer;
  }

  /** Events refused since the connector was created. */
  get count(): number {
    return this.#count;
  }

  /** Whether events are being refused now. */
  get active(): boolean {
    return this.#active;
  }

  /** Counts one refused event and says why; the first of a run is logged. */
  refuse(maxPending: number, state: string): SendFailure {
    this.#count++;
    if (!this.#active) {
      this.#active = true;
      this.#log.warn(
        `connector overflowing: ${this.#peer} has not confirmed sent data, refusing events`,
        { max_pending: maxPending, state },
      );
    }
    return { kind: "overflow", reason: `more than ${maxPending} bytes unconfirmed` };
  }

  /** The unconfirmed data is below the bound again: events are accepted (logged once). */
  recovered(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#log.info("connector accepting events again", { overflows: this.#count });
  }
}
