import assert from "node:assert/strict";
import { formatDuration, parseDuration, parseSize } from "../src/config/units.ts";

Deno.test("parseDuration() reads milliseconds", () => {
  assert.equal(parseDuration("250ms"), 250);
});

Deno.test("parseDuration() reads seconds", () => {
  assert.equal(parseDuration("2s"), 2_000);
});

Deno.test("parseDuration() reads minutes", () => {
  assert.equal(parseDuration("5m"), 300_000);
});

Deno.test("parseDuration() reads hours", () => {
  assert.equal(parseDuration("1h"), 3_600_000);
});

Deno.test("parseDuration() reads zero", () => {
  assert.equal(parseDuration("0s"), 0);
  assert.equal(parseDuration("0ms"), 0);
});

Deno.test("parseDuration() reads decimal counts exactly", () => {
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("1.1s"), 1_100);
  assert.equal(parseDuration("0.001s"), 1);
  assert.equal(parseDuration("1.234s"), 1_234);
  assert.equal(parseDuration("0.5h"), 1_800_000);
});

Deno.test("parseDuration() keeps fractional milliseconds", () => {
  assert.equal(parseDuration("1.5ms"), 1.5);
});

Deno.test("parseDuration() rejects a bare number", () => {
  assert.equal(parseDuration("5000"), undefined);
  assert.equal(parseDuration("0"), undefined);
});

Deno.test("parseDuration() rejects spaces", () => {
  assert.equal(parseDuration("5 s"), undefined);
  assert.equal(parseDuration(" 5s"), undefined);
  assert.equal(parseDuration("5s "), undefined);
});

Deno.test("parseDuration() rejects unknown units", () => {
  for (const text of ["5d", "5sec", "5S", "5MS", "5us", "5ns", "5H"]) {
    assert.equal(parseDuration(text), undefined, text);
  }
});

Deno.test("parseDuration() rejects signs", () => {
  assert.equal(parseDuration("-1s"), undefined);
  assert.equal(parseDuration("+1s"), undefined);
});

Deno.test("parseDuration() rejects malformed decimals", () => {
  for (const text of [".5s", "1.s", "1..5s", "1,5s", "1e3ms"]) {
    assert.equal(parseDuration(text), undefined, text);
  }
});

Deno.test("parseDuration() rejects compound durations", () => {
  assert.equal(parseDuration("1h30m"), undefined);
});

Deno.test("parseDuration() rejects empty text and a unit alone", () => {
  assert.equal(parseDuration(""), undefined);
  assert.equal(parseDuration("ms"), undefined);
});

Deno.test("parseDuration() rejects a value too large to represent", () => {
  assert.equal(parseDuration(`${"9".repeat(400)}h`), undefined);
});

Deno.test("parseSize() reads bytes", () => {
  assert.equal(parseSize("100B"), 100);
  assert.equal(parseSize("0B"), 0);
});

Deno.test("parseSize() reads decimal units", () => {
  assert.equal(parseSize("10KB"), 10_000);
  assert.equal(parseSize("1MB"), 1_000_000);
  assert.equal(parseSize("2GB"), 2_000_000_000);
});

Deno.test("parseSize() reads binary units", () => {
  assert.equal(parseSize("512KiB"), 524_288);
  assert.equal(parseSize("64MiB"), 67_108_864);
  assert.equal(parseSize("1GiB"), 1_073_741_824);
});

Deno.test("parseSize() reads decimal counts exactly", () => {
  assert.equal(parseSize("1.5KiB"), 1_536);
  assert.equal(parseSize("0.1KB"), 100);
  assert.equal(parseSize("2.5MB"), 2_500_000);
});

Deno.test("parseSize() rounds fractional bytes down", () => {
  assert.equal(parseSize("1.9B"), 1);
  assert.equal(parseSize("0.001KiB"), 1);
});

Deno.test("parseSize() rejects a bare number", () => {
  assert.equal(parseSize("1024"), undefined);
});

Deno.test("parseSize() rejects unknown or miscased units", () => {
  for (const text of ["1kb", "1kB", "1KIB", "1mib", "1TB", "1TiB", "1K", "1M", "1b", "1bytes"]) {
    assert.equal(parseSize(text), undefined, text);
  }
});

Deno.test("parseSize() rejects spaces, signs and malformed numbers", () => {
  for (const text of ["1 KiB", " 1KiB", "-1KiB", "+1KiB", ".5KiB", "1.KiB", "1e3B", ""]) {
    assert.equal(parseSize(text), undefined, text);
  }
});

Deno.test("parseSize() rejects sizes beyond the safe integer range", () => {
  assert.equal(parseSize("9999999999GiB"), undefined);
});

Deno.test("formatDuration() writes whole seconds in seconds", () => {
  assert.equal(formatDuration(2_000), "2s");
});

Deno.test("formatDuration() writes sub-second values in milliseconds", () => {
  assert.equal(formatDuration(250), "250ms");
});

Deno.test("formatDuration() writes whole minutes and hours in their unit", () => {
  assert.equal(formatDuration(300_000), "5m");
  assert.equal(formatDuration(5_400_000), "90m");
  assert.equal(formatDuration(7_200_000), "2h");
});

Deno.test("formatDuration() keeps milliseconds when no larger unit divides exactly", () => {
  assert.equal(formatDuration(1_500), "1500ms");
  assert.equal(formatDuration(1.5), "1.5ms");
});

Deno.test("formatDuration() writes zero and negative values in milliseconds", () => {
  assert.equal(formatDuration(0), "0ms");
  assert.equal(formatDuration(-2_000), "-2000ms");
});

Deno.test("formatDuration() writes non-finite values as they are", () => {
  assert.equal(formatDuration(Infinity), "Infinity");
  assert.equal(formatDuration(Number.NaN), "NaN");
});

Deno.test("formatDuration() output is read back by parseDuration()", () => {
  for (const ms of [0, 1, 250, 1_000, 1_500, 60_000, 90_000, 3_600_000, 5_400_000, 86_400_000]) {
    assert.equal(parseDuration(formatDuration(ms)), ms, String(ms));
  }
});
