// re2js is loaded only for a configuration that calls `matches` (about 1 MiB of idle memory): a
// load without it leaves re2js unloaded, one with it loads re2js and compiles as before, wherever
// the expression comes from. The tests of this file share one module instance and run in order:
// the first two need re2js not yet loaded.
import assert from "node:assert/strict";
import { loadConfig, loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { re2Loaded, Re2NotLoaded } from "../src/filter/re2.ts";
import { configDir } from "../dev/config_dir.ts";
import { runSluice } from "../dev/sluice_process.ts";

const registry = builtinRegistry();

/** A pipeline whose one sink takes the events for which `when` holds (line 11). */
const config = (when: string) =>
  `connectors:
  local:
    type: nats
    servers: ["nats://127.0.0.1:4222"]
pipelines:
  names:
    source: { connector: local, subject: in.> }
    sinks:
      - connector: local
        subject: out
        when: ${when}
`;

Deno.test("a configuration without matches leaves re2js unloaded", async () => {
  await using d = await configDir(config('name == "a"'));
  const loaded = await loadConfig([d.file], { registry });
  assert.ok(loaded.pipelines.get("names")?.sinks[0]?.when);
  assert.equal(re2Loaded(), false);
});

Deno.test("compiling matches before re2js is loaded is a signal, not a config error", () => {
  assert.throws(
    () => loadConfigTexts([{ path: "a.yaml", text: config("name.matches('^a')") }], { registry }),
    (e: unknown) => e instanceof Re2NotLoaded && e.code === "re2_not_loaded",
  );
  assert.equal(re2Loaded(), false);
});

Deno.test("loadConfig loads re2js for matches, also in an expression from the environment", async () => {
  await using d = await configDir(config("${FILTER}"));
  const env = (name: string) => name === "FILTER" ? "matches(name, '^(a+)+$')" : undefined;
  const loaded = await loadConfig([d.file], { registry, env });
  assert.equal(re2Loaded(), true);
  const filter = loaded.pipelines.get("names")?.sinks[0]?.when;
  const meta = { subject: "in.x", headers: undefined };
  assert.equal(filter?.matches({ name: "aaa" }, meta), true);
  // RE2: linear time on the input that makes a backtracking RegExp stall.
  assert.equal(filter?.matches({ name: `${"a".repeat(40)}!` }, meta), false);
});

Deno.test("an invalid pattern is reported at its place after re2js loads", async () => {
  await using d = await configDir(config("name.matches('a(b')"));
  const err = await loadConfig([d.file], { registry }).then(
    () => assert.fail("expected a config error"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigErrors);
  assert.match(
    String(err.errors[0]),
    /sluice\.yaml:11:\d+: pipelines\.names\.sinks\[0\]\.when: invalid when: invalid RE2 pattern "a\(b"/,
  );
});

/** `sluice check` with the permissions of the `check` task, in a process of its own. */
function check(dir: string) {
  return runSluice(["check", dir], {
    denoFlags: [
      `--allow-read=${dir}`,
      "--allow-env=NATS_URL,UPLINK_URL,SLUICE_CLIENT_NAME,LOG_TOKENS,LOG_STREAM",
      "--allow-sys=hostname",
    ],
    env: { NO_COLOR: "1" },
  });
}

Deno.test("sluice check with narrow permissions loads re2js for matches", async () => {
  await using good = await configDir(config("name.matches('^a[0-9]+$')"));
  const ok = await check(good.dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: 1 connector, 1 pipeline in 1 file/);
  await using bad = await configDir(config("name.matches('(?<=a)b')"));
  const refused = await check(bad.dir);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /sluice\.yaml:11:\d+: pipelines\.names\.sinks\[0\]\.when: .*invalid RE2/,
  );
});
