/**
 * Every way Sluice is launched gives V8 the same memory flag: a young generation of 1 MiB per
 * semi-space, which keeps a flood about 20 MiB smaller (docs/performance.md, "Memory"). The
 * flag is written in three places (deno.json, deploy/compile.sh, deploy/install-cli.sh); this
 * keeps them from drifting apart. That Sluice runs with it is shown by the tests that launch it
 * those ways (permissions_test.ts, bundle_test.ts, cli_install_test.ts).
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../dev/sluice_process.ts";
import { compileFlags, taskDenoFlags } from "../dev/tasks.ts";

const V8_FLAGS = "--v8-flags=--max-semi-space-size=1";

Deno.test("the start task runs Sluice with the memory flag", async () => {
  assert.ok((await taskDenoFlags("start")).includes(V8_FLAGS));
});

Deno.test("executables and the service's bundle drop-in get the memory flag from compile.sh", async () => {
  const flags = await compileFlags({ configDir: "/etc/sluice", stateDir: "/var/lib/sluice" });
  assert.ok(flags.includes(V8_FLAGS), flags.join(" "));
});

Deno.test("the sluice launcher runs Sluice with the memory flag, not its permissions step", async () => {
  const script = await Deno.readTextFile(`${REPO_ROOT}deploy/install-cli.sh`);
  const run = script.split("\n").filter((l) => l.startsWith('exec "\\$DENO" run'));
  assert.equal(run.length, 1, "one exec of deno run in the launcher");
  assert.ok(run[0]!.includes(V8_FLAGS), run[0]!);
  const step = script.split("\n").find((l) => l.startsWith('step=("\\$DENO" run'));
  assert.ok(step !== undefined && !step.includes("--v8-flags"), "the short step needs none");
});
