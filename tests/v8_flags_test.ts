/**
 * Every way Sluice is launched gives it the same memory settings (docs/performance.md, "Memory"):
 * the V8 flags (a young generation of 1 MiB per semi-space, optimising compiles on the main
 * thread) and glibc's `MALLOC_TRIM_THRESHOLD_` (freed memory goes back to the system). They are
 * written in deno.json, deploy/compile.sh, deploy/install-cli.sh and deploy/sluice.service; this
 * keeps them from drifting apart. That Sluice runs with them is shown by the tests that launch it
 * those ways (permissions_test.ts, bundle_test.ts, cli_install_test.ts).
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../dev/sluice_process.ts";
import { compileFlags, taskDenoFlags, taskEnv } from "../dev/tasks.ts";

const V8_FLAGS =
  "--v8-flags=--max-semi-space-size=1,--no-concurrent-recompilation,--no-incremental-marking";
const MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_=131072";

Deno.test("the start and check tasks run Sluice with the memory settings", async () => {
  assert.ok((await taskDenoFlags("start")).includes(V8_FLAGS));
  // check too: V8 takes Deno's cache of compiled code only from a run with the same flags.
  assert.ok((await taskDenoFlags("check")).includes(V8_FLAGS));
  assert.deepEqual(await taskEnv("start"), { MALLOC_TRIM_THRESHOLD_: "131072" });
});

Deno.test("executables and the service's bundle drop-in get the V8 flags from compile.sh, the service the malloc setting", async () => {
  const flags = await compileFlags({ configDir: "/etc/sluice", stateDir: "/var/lib/sluice" });
  assert.ok(flags.includes(V8_FLAGS), flags.join(" "));
  const unit = await Deno.readTextFile(`${REPO_ROOT}deploy/sluice.service`);
  assert.match(unit, new RegExp(`^Environment=${MALLOC_TRIM}$`, "m"));
});

Deno.test("the sluice launcher runs Sluice and its permissions step with the memory settings", async () => {
  const script = await Deno.readTextFile(`${REPO_ROOT}deploy/install-cli.sh`);
  const lines = script.split("\n");
  assert.ok(lines.includes(`V8_FLAGS=${V8_FLAGS}`), "the launcher defines V8_FLAGS");
  const run = lines.filter((l) => l.startsWith('exec "\\$DENO" run'));
  assert.equal(run.length, 1, "one exec of deno run in the launcher");
  assert.ok(run[0]!.includes('"\\$V8_FLAGS"'), run[0]!);
  // The same flags in the short step: V8 takes the code cache only from a run with the same flags.
  const step = lines.find((l) => l.startsWith('step=("\\$DENO" run'));
  assert.ok(step?.includes('"\\$V8_FLAGS"'), String(step));
  const exported = lines.indexOf(`export ${MALLOC_TRIM}`);
  assert.ok(exported >= 0 && exported < lines.indexOf(run[0]!), "exported before the exec");
});
