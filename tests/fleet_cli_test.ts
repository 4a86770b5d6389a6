/**
 * The fleet's bad-input paths: `fleet deploy` refuses an invalid file as `check` does (exit 2,
 * file:line:col, nothing written), files with `connectors:` and `${VAR}`; usage errors; a missing
 * bucket or server; and the `fleet:` section's own checks. Plus the key layout and the choice of
 * version when several targets name one pipeline.
 */
import assert from "node:assert/strict";
import { NatsServer } from "../dev/nats_server.ts";
import { runSluice } from "../dev/sluice_process.ts";
import { parseInvocation } from "../src/cli/args.ts";
import { derivePermissions } from "../src/cli/permissions.ts";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { resolveDesired } from "../src/fleet/desired.ts";
import { gatewayFilters, parseKey, targetKey } from "../src/fleet/keys.ts";
import { fleet, fleetJson } from "./_fleet.ts";

async function writeFile(dir: string, name: string, text: string): Promise<string> {
  const file = `${dir}/${name}`;
  await Deno.writeTextFile(file, text);
  return file;
}

Deno.test("fleet deploy refuses invalid files; nothing is written", async (t) => {
  await using server = await NatsServer.start({ jetstream: true });
  const url = server.url;
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-cli-" });
  try {
    assert.equal((await fleet(url, "init")).code, 0);
    const nothingWritten = async (name: string) =>
      assert.deepEqual(await fleetJson<unknown[]>(url, "history", name), []);

    await t.step("an invalid CEL filter: exit 2 with file:line:col", async () => {
      const file = await writeFile(
        dir,
        "bad.yaml",
        "pipelines:\n  bad:\n    source: {connector: local, subject: in.>}\n    filter: t >\n" +
          "    sinks: [{connector: local, subject: out}]\n",
      );
      const r = await fleet(url, "deploy", file, "--all");
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        new RegExp(`^${file}:4:\\d+: pipelines\\.bad\\.filter: invalid filter`),
      );
      assert.match(r.stderr, /1 configuration error; nothing was deployed/);
      await nothingWritten("bad");
    });

    await t.step("one bad file among good ones: nothing is written", async () => {
      const good = await writeFile(
        dir,
        "good.yaml",
        "pipelines:\n  good:\n    source: {connector: local, subject: in.>}\n" +
          "    sinks: [{connector: local, subject: out}]\n",
      );
      const bad = await writeFile(
        dir,
        "bad-subject.yaml",
        "pipelines:\n  other:\n    source: {connector: local, subject: 'in..x'}\n" +
          "    sinks: [{connector: local, subject: out}]\n",
      );
      const r = await fleet(url, "deploy", good, bad, "--to", "gw-01");
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`${bad}:3:\\d+: pipelines\\.other\\.source\\.subject`));
      await nothingWritten("good");
    });

    await t.step("connectors: never travel", async () => {
      const file = await writeFile(
        dir,
        "with-connectors.yaml",
        "connectors:\n  local: {type: nats, auth: {token: s3cret}}\npipelines:\n  p:\n" +
          "    source: {connector: local, subject: in}\n    sinks: [{connector: local, subject: out}]\n",
      );
      const r = await fleet(url, "deploy", file, "--all");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /:1:1: connectors: a deployed file holds pipelines: only/);
      assert.ok(!r.stderr.includes("s3cret"));
      await nothingWritten("p");
    });

    await t.step(
      "${VAR} is not read from the operator's (or a gateway's) environment",
      async () => {
        const file = await writeFile(
          dir,
          "env.yaml",
          "pipelines:\n  e:\n    source: {connector: local, subject: '${HOME}'}\n" +
            "    sinks: [{connector: local, subject: out}]\n",
        );
        const r = await fleet(url, "deploy", file, "--all");
        assert.equal(r.code, 2);
        assert.match(r.stderr, /HOME/);
        await nothingWritten("e");
      },
    );

    await t.step("an outbox path outside the gateway's outbox directory", async () => {
      const file = await writeFile(
        dir,
        "outbox.yaml",
        "pipelines:\n  o:\n    source: {connector: local, subject: in}\n" +
          "    sinks: [{connector: local, subject: out, buffer: {path: /etc/passwd}}]\n",
      );
      const r = await fleet(url, "deploy", file, "--all");
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /:4:\d+: pipelines\.o\.sinks\[0\]\.buffer\.path: a deployed pipeline's outbox path is relative/,
      );
      await nothingWritten("o");
    });

    await t.step("usage errors exit 2", async () => {
      const cases: [string[], RegExp][] = [
        [["deploy", `${dir}/good.yaml`], /needs a target/],
        [["deploy", `${dir}/good.yaml`, "--all", "--to", "gw-01"], /give one target/],
        [["deploy", `${dir}/good.yaml`, "--label", "site"], /--label must be key=value/],
        [["undeploy", "a.b", "--all"], /invalid pipeline name "a\.b"/],
        [["status"], /fleet status takes ID/],
        [["ls", "--revision", "3"], /--revision goes with rollback/],
        [["bogus"], /unknown fleet command "bogus"/],
      ];
      for (const [args, message] of cases) {
        const r = await fleet(url, ...args);
        assert.equal(r.code, 2, args.join(" "));
        assert.match(r.stderr, message);
      }
      const noServer = await runSluice(["fleet", "ls"], { env: { NATS_URL: "" } });
      assert.equal(noServer.code, 2);
      assert.match(noServer.stderr, /no server: give --server URL or set NATS_URL/);
    });

    await t.step("runtime failures exit 1", async () => {
      const noBucket = await fleet(url, "history", "x", "--bucket", "missing");
      assert.equal(noBucket.code, 1);
      assert.match(
        noBucket.stderr,
        /bucket "missing" does not exist: create it with sluice fleet init/,
      );
      const offline = await fleet(url, "status", "gw-nobody");
      assert.equal(offline.code, 1);
      assert.match(offline.stderr, /gateway "gw-nobody" did not answer/);
      const unreachable = await runSluice([
        "fleet",
        "ls",
        "--server",
        "nats://u:pw-secret@127.0.0.1:1",
      ]);
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.stderr, /cannot connect to nats:\/\/\*\*\*@127\.0\.0\.1:1/);
      assert.ok(!unreachable.stderr.includes("pw-secret"));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the fleet: section is checked like every section", () => {
  const load = (yaml: string) =>
    loadConfigTexts([{ path: "gw.yaml", text: yaml }], {
      registry: builtinRegistry(),
      hostname: () => "host.example",
    });
  const errors = (yaml: string) => {
    try {
      load(yaml);
    } catch (e) {
      if (e instanceof ConfigErrors) return e.errors.map(String);
      throw e;
    }
    return [];
  };
  const nats = "connectors:\n  up: {type: nats}\n";
  assert.deepEqual(errors(`${nats}fleet: {connector: nope, id: gw-1, state_dir: /s}\n`), [
    'gw.yaml:3:20: fleet.connector: unknown connector "nope": declared are up',
  ]);
  assert.match(
    errors(`${nats}fleet: {connector: up, id: "a.b", state_dir: /s}\n`).join(),
    /fleet\.id: expected a gateway id/,
  );
  assert.match(
    errors(`${nats}fleet: {connector: up, id: g, state_dir: /s, labels: {site: "a b"}}\n`).join(),
    /fleet\.labels\.site: expected a label value/,
  );
  assert.match(errors(`${nats}fleet: {connector: up, id: g}\n`).join(), /fleet\.state_dir/);
  assert.match(
    errors(`${nats}fleet: {connector: up, state_dir: /s}\n`).join(),
    /the hostname "host\.example" is not a valid gateway id/,
  );
  const ok = load(`${nats}fleet: {connector: up, id: gw-1, state_dir: /s, labels: {site: oslo}}\n`);
  assert.equal(ok.fleet?.id, "gw-1");
  assert.equal(ok.fleet?.bucket, "sluice-fleet");
  assert.deepEqual(ok.fleet?.labels, { site: "oslo" });
});

Deno.test("keys: one per pipeline and target; the most specific target wins", () => {
  assert.equal(targetKey({ kind: "label", key: "site", value: "oslo" }, "p"), "label.site.oslo.p");
  assert.deepEqual(parseKey("gw.gw-1.p"), {
    target: { kind: "gateway", id: "gw-1" },
    pipeline: "p",
  });
  assert.equal(parseKey("gw.p"), undefined);
  assert.deepEqual(gatewayFilters("gw-1", { site: "oslo" }), [
    "all.>",
    "gw.gw-1.>",
    "label.site.oslo.>",
  ]);
  const desired = resolveDesired(
    new Map([
      ["all.p", { revision: 9, text: "all" }],
      ["label.site.oslo.p", { revision: 5, text: "label" }],
      ["gw.gw-1.p", { revision: 1, text: "own" }],
      ["all.q", { revision: 2, text: "all-q" }],
      ["label.site.oslo.r", { revision: 3, text: "old label" }],
      ["label.role.meters.r", { revision: 4, text: "new label" }],
    ]),
  );
  assert.equal(desired.get("p")?.text, "own");
  assert.equal(desired.get("q")?.text, "all-q");
  assert.equal(desired.get("r")?.text, "new label");
});

Deno.test("sluice permissions grants a fleet gateway its state_dir, and the fleet CLI its needs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-perm-flags-" });
  try {
    const file = await writeFile(
      dir,
      "gw.yaml",
      "connectors:\n  up: {type: nats, servers: nats://127.0.0.1:4222}\n" +
        `fleet: {connector: up, id: gw-1, state_dir: ${dir}/state}\n`,
    );
    const grants = await derivePermissions(parseInvocation(["run", file]), {
      resolveHost: () => Promise.resolve([]),
    });
    assert.ok(grants.write.has(`${dir}/state`));
    assert.ok(grants.read.has(`${dir}/state`));
    const flags = await runSluice(["permissions", "fleet", "ls", "--server", "nats://h:4222"]);
    assert.equal(flags.code, 0);
    assert.deepEqual(flags.stdout.trim().split("\n"), [
      "--allow-read",
      "--allow-net",
      "--allow-env",
      "--allow-sys",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
