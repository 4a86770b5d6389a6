/**
 * The hand-written baselines of the processor scenarios: what a careful developer would write
 * with nats.js to do the same job as Sluice's processor chain, in the same process layout as
 * `baseline.ts` (which runs them), so the comparison is the chain's cost and nothing else.
 *
 * - `map-dedupe`, `dedupe-10k`: decode; add the zone (third subject token) and the temperature
 *   in Fahrenheit; forward per sensor only when nothing was forwarded yet or the temperature moved
 *   by at least the deadband since the last forwarded one; keep at most `max_keys` sensors, the
 *   least recently seen forgotten first; publish the changed event as compact JSON.
 * - `window-1k`: decode; aggregate per sensor over tumbling wall-clock windows aligned to
 *   multiples of the size since the epoch (avg, max and count of the temperature); a timer emits
 *   every window that has ended, whether or not more events arrive; on stop the open windows are
 *   emitted with `"partial": true`.
 *
 * Both also forward the marks (`bench.mark` → `marks.out`) that time the run.
 *
 * @module
 */
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { DEDUPE, MARKS, movedBy, WINDOW } from "./_scenarios.ts";

/** What a pipeline of the baseline counts, reported in its summary like Sluice's. */
export interface Counts {
  name: string;
  in: number;
  passed: number;
  filtered: number;
  deadLettered: number;
  errors: number;
  /** JetStream source: messages acked. JetStream sink: PubAcks received. */
  acked: number;
}

/** A subscription callback of nats.js. */
export type Callback = (err: Error | null, msg: Msg) => void;

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Forwards the marks unchanged: the pass-through pipeline of the processor scenarios. */
export function forwardMarks(nc: NatsConnection, c: Counts): void {
  nc.subscribe(MARKS.source, {
    callback: (err, msg) => {
      if (err) return;
      c.in++;
      c.passed++;
      nc.publish(MARKS.sink, msg.data);
    },
  });
}

/**
 * Map + report by exception per sensor.
 *
 * @param nc The connection to publish on.
 * @param c The pipeline's counts.
 * @param sink Where changed events go.
 * @returns The subscription callback.
 */
export function mapDedupe(nc: NatsConnection, c: Counts, sink: string): Callback {
  // Insertion order is recency: a key seen again is moved to the end, the first is the oldest.
  const last = new Map<string, number>();
  return (err, msg) => {
    if (err) return;
    c.in++;
    try {
      const e = JSON.parse(decoder.decode(msg.data));
      e.zone = msg.subject.split(".")[2];
      e["temperature_f"] = e.temperature * 1.8 + 32.0;
      const key = String(e.sensor);
      const value = e.temperature;
      if (typeof value !== "number") throw new TypeError("temperature is not a number");
      const prev = last.get(key);
      if (prev !== undefined) last.delete(key);
      else if (last.size >= DEDUPE.maxKeys) last.delete(last.keys().next().value!);
      if (prev === undefined || movedBy(prev, value, DEDUPE.deadband)) {
        last.set(key, value);
        c.passed++;
        nc.publish(sink, encoder.encode(JSON.stringify(e)));
      } else {
        last.set(key, prev);
        c.filtered++;
      }
    } catch {
      c.errors++;
    }
  };
}

interface Window {
  start: number;
  count: number;
  sum: number;
  max: number;
}

/**
 * Tumbling windows per sensor.
 *
 * @param nc The connection to publish on.
 * @param c The pipeline's counts (`passed`: windows emitted).
 * @param sink Where the windows go.
 * @returns The subscription callback, and `close` that stops the timer and emits the open
 *   windows as partial.
 */
export function tumblingWindows(
  nc: NatsConnection,
  c: Counts,
  sink: string,
): { callback: Callback; close(): void } {
  const size = WINDOW.sizeMs;
  const open = new Map<string, Window>();
  const emit = (key: string, w: Window, partial: boolean) => {
    const out: Record<string, unknown> = {
      key,
      "window_start": w.start,
      "window_end": w.start + size,
      "temperature_avg": w.sum / w.count,
      "temperature_max": w.max,
      readings: w.count,
    };
    if (partial) out.partial = true;
    c.passed++;
    nc.publish(sink, encoder.encode(JSON.stringify(out)));
  };
  /** Emits every window that ended by now; runs at each boundary. */
  const closeEnded = () => {
    const now = Date.now();
    for (const [key, w] of open) {
      if (w.start + size <= now) {
        emit(key, w, false);
        open.delete(key);
      }
    }
    timer = setTimeout(closeEnded, size - (Date.now() % size));
  };
  let timer = setTimeout(closeEnded, size - (Date.now() % size));
  const callback: Callback = (err, msg) => {
    if (err) return;
    c.in++;
    try {
      const e = JSON.parse(decoder.decode(msg.data));
      const t = e.temperature;
      if (typeof t !== "number") throw new TypeError("temperature is not a number");
      const key = String(e.sensor);
      const now = Date.now();
      const start = now - (now % size);
      let w = open.get(key);
      if (w !== undefined && w.start !== start) {
        // Its window ended before the timer ran (a busy event loop): emit it now.
        emit(key, w, false);
        open.delete(key);
        w = undefined;
      }
      if (w === undefined) {
        if (open.size >= WINDOW.maxKeys) {
          const oldest = open.keys().next().value!;
          emit(oldest, open.get(oldest)!, true);
          open.delete(oldest);
        }
        open.set(key, { start, count: 1, sum: t, max: t });
      } else {
        w.count++;
        w.sum += t;
        if (t > w.max) w.max = t;
      }
      c.filtered++; // absorbed
    } catch {
      c.errors++;
    }
  };
  return {
    callback,
    close() {
      clearTimeout(timer);
      for (const [key, w] of open) emit(key, w, true);
      open.clear();
    },
  };
}
