import assert from "node:assert/strict";
import { KeyedState } from "../src/processors/_keyed.ts";
import type { ProcessorCounters } from "../src/processors/types.ts";

function state(max: number): { s: KeyedState<number>; counters: ProcessorCounters } {
  const counters = { evicted: 0 } as ProcessorCounters;
  return { s: new KeyedState<number>(max, counters), counters };
}

const keys = (s: KeyedState<number>) => [...s.entries()].map(([k]) => k);

Deno.test("KeyedState forgets the least recently seen key when a new one exceeds max_keys", () => {
  const { s, counters } = state(3);
  s.add("a", 1);
  s.add("b", 2);
  s.add("c", 3);
  assert.equal(s.touch("a"), 1); // a is now the most recently seen
  assert.equal(s.touch("c"), 3);
  assert.deepEqual(keys(s), ["b", "a", "c"]);
  s.add("d", 4); // b goes
  assert.deepEqual(keys(s), ["a", "c", "d"]);
  assert.equal(s.touch("b"), undefined);
  assert.equal(counters.evicted, 1);
  assert.equal(s.touch("d"), 4, "touching the most recent key keeps the order");
  assert.deepEqual(keys(s), ["a", "c", "d"]);
  assert.equal(s.size, 3);
});

Deno.test("KeyedState: deleting the entry just yielded while iterating visits every key once", () => {
  const { s, counters } = state(10);
  for (const [i, k] of ["a", "b", "c", "d"].entries()) s.add(k, i);
  const seen: string[] = [];
  for (const [k, v] of s.entries()) {
    seen.push(k);
    if (v % 2 === 0) s.delete(k);
  }
  assert.deepEqual(seen, ["a", "b", "c", "d"]);
  assert.deepEqual(keys(s), ["b", "d"]);
  assert.equal(s.size, 2);
  assert.equal(counters.evicted, 0, "a delete is not an eviction");
  s.delete("nope");
  s.add("e", 5);
  assert.deepEqual(keys(s), ["b", "d", "e"]);
  s.clear();
  assert.equal(s.size, 0);
  assert.deepEqual(keys(s), []);
  s.add("f", 6);
  assert.deepEqual(keys(s), ["f"]);
});

Deno.test("KeyedState with one key: the only key is evicted by the next", () => {
  const { s, counters } = state(1);
  s.add("a", 1);
  assert.equal(s.touch("a"), 1);
  s.add("b", 2);
  assert.deepEqual(keys(s), ["b"]);
  assert.equal(counters.evicted, 1);
});
