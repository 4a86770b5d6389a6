/**
 * Cost of one filter evaluation against a plain JavaScript closure doing the same comparison.
 * Run with `deno bench bench/filter_bench.ts`.
 *
 * @module
 */

import { Environment } from "cel";
import { compileFilter, type EventMeta, type HeaderSource } from "../src/filter/filter.ts";

const events = [
  { temperature: 30.5, site: "a", humidity: 41, reading: { temp: 4 } },
  { temperature: 29.5, site: "a", humidity: 40, reading: { temp: 2 } },
  { temperature: 31.5, site: "b", humidity: 39, reading: { temp: 5 } },
  { temperature: 32.5, site: "a", humidity: 38, reading: { temp: 1 } },
];
const headers: HeaderSource = {
  keys: () => ["X-Site", "Nats-Msg-Id"],
  get: (name) => (name === "X-Site" ? "a" : "id-1"),
};
const meta: EventMeta = { subject: "sensors.site-a.temp", headers };

let sink = 0;
let i = 0;

const closure = (e: { temperature: number; site: string }) => e.temperature > 30 && e.site === "a";
Deno.bench(
  "closure: temperature > 30 && site == a",
  { group: "two-clause", baseline: true },
  () => {
    if (closure(events[i++ & 3]!)) sink++;
  },
);

const twoClause = compileFilter('temperature > 30 && site == "a"');
Deno.bench("compileFilter: temperature > 30 && site == a", { group: "two-clause" }, () => {
  if (twoClause.matches(events[i++ & 3], meta)) sink++;
});

// The floor: cel-js itself, with a context built once and never refilled.
const raw = new Environment({ unlistedVariablesAreDyn: true }).parse(
  'temperature > 30 && site == "a"',
);
raw.check();
const rawContexts = events.map((e) => ({ temperature: e.temperature, site: e.site }));
Deno.bench("cel-js alone, prebuilt context", { group: "two-clause" }, () => {
  if (raw(rawContexts[i++ & 3]!)) sink++;
});

const nested = compileFilter("reading.temp > 3");
Deno.bench("compileFilter: reading.temp > 3", { group: "other" }, () => {
  if (nested.matches(events[i++ & 3], meta)) sink++;
});

const tokens = compileFilter('_tokens[1] == "site-a" && temperature > 30');
Deno.bench("compileFilter: _tokens[1] == site-a && temperature > 30", { group: "other" }, () => {
  if (tokens.matches(events[i++ & 3], meta)) sink++;
});

const header = compileFilter('_headers["X-Site"] == "a"');
Deno.bench('compileFilter: _headers["X-Site"] == a', { group: "other" }, () => {
  if (header.matches(events[i++ & 3], meta)) sink++;
});

addEventListener("unload", () => {
  if (sink < 0) throw new Error("unreachable; keeps results alive");
});
