/**
 * The installed `sluice` command (deploy/install-cli.sh, `deno task install`): one short command
 * runs, checks and reports the status of any configuration directory, with Deno permissions
 * derived from that configuration (`sluice permissions`) instead of a long list of flags.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { denoFlags, derivePermissions, type Grants } from "../src/cli/permissions.ts";
import { parseInvocation } from "../src/cli/args.ts";
import { UsageError } from "../src/errors.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { REPO_ROOT, SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, withTimeout } from "../dev/wait.ts";

/** A temp dir with files in it; removed on dispose. */
async function tempDir(
  files: Record<string, string> = {},
): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "sluice-install-" }));
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

/** Runs a command to its end; stdout and stderr as text. */
async function exec(
  program: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await withTimeout(
    new Deno.Command(program, {
      args,
      cwd: options.cwd ?? REPO_ROOT,
      env: { NO_COLOR: "1", ...options.env },
      stdin: "null",
    }).output(),
    60_000,
    `${program} ${args.join(" ")}`,
  );
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

async function derive(args: string[], env: Record<string, string> = {}, cwd = "/work") {
  const grants = await derivePermissions(parseInvocation(args), {
    env: (n) => env[n],
    cwd,
    resolveHost: (h) =>
      h === "nats.example" || h === "cafe"
        ? Promise.resolve(["10.1.2.3"])
        : Promise.reject(new Error("no")),
  });
  return denoFlags(grants);
}

// --- deriving permissions from a configuration ------------------------------------------------

Deno.test("sluice permissions run: paths, named files, outbox dirs, hosts, health, variables", async () => {
  await using t = await tempDir({
    "conf/connectors.yaml": `
connectors:
  uplink:
    type: nats
    servers: ["\${UPLINK_URL}", "nats.example:4223", "tls://[::1]:4224"]
    auth: { token: "$\${NOT_A_VAR}\${TOKEN}" }
  local:
    type: nats
health: { listen: "127.0.0.1:0" }
`,
    "conf/pipelines.yaml": `
pipelines:
  p:
    source: { connector: local, subject: a.> }
    sinks:
      - connector: uplink
        subject: b
        buffer: { path: state/uplink.db }
    dead_letter: { connector: local, subject: dlq, buffer: { path: /var/tmp/dlq/dl.db } }
`,
  });
  const env = { UPLINK_URL: "nats://10.0.0.5:4222", TOKEN: "secret" };
  const flags = await derive(["run", `${t.dir}/conf`], env, t.dir);
  assert.deepEqual(flags, [
    `--allow-read=${["/var/tmp/dlq", `${t.dir}/conf`, `${t.dir}/state`].sort().join(",")}`,
    `--allow-write=${["/var/tmp/dlq", `${t.dir}/state`].sort().join(",")}`,
    "--allow-net=10.0.0.5:4222,10.1.2.3:4223,127.0.0.1,127.0.0.1:4222,[::1]:4224,nats.example:4223",
    "--allow-env=LOG_STREAM,LOG_TOKENS,TOKEN,UPLINK_URL",
    "--allow-sys=hostname",
  ]);
  assert.ok(!flags.join(" ").includes("secret"), "a variable's value is never printed");
});

Deno.test("sluice permissions looks up host names (also ones made of hex digits), not addresses", async () => {
  await using t = await tempDir({
    "c.yaml": `
connectors:
  a: { type: nats, servers: "nats://cafe:4222,nats://[fe80::1]:4222,nats://10.0.0.1" }
pipelines:
  p:
    source: { connector: a, subject: x }
    sinks: [{ connector: a, subject: y }]
`,
  });
  const flags = await derive(["run", `${t.dir}/c.yaml`], {}, t.dir);
  assert.equal(flags[1], "--allow-net=10.0.0.1,10.1.2.3:4222,[fe80::1]:4222,cafe:4222");
});

Deno.test("sluice permissions check: no network and no writes; files the connectors name are readable", async () => {
  await using t = await tempDir({
    "gw.creds": "not checked here",
    "c.yaml": `
connectors:
  up: { type: nats, servers: nats://10.0.0.5:4222, tls: { ca_file: ca.pem } }
pipelines:
  p:
    source: { connector: up, subject: a }
    sinks: [{ connector: up, subject: b, buffer: { path: /var/lib/x/y.db } }]
`,
  });
  await Deno.writeTextFile(`${t.dir}/ca.pem`, "");
  const flags = await derive(["check", `${t.dir}/c.yaml`], {}, t.dir);
  assert.deepEqual(flags, [
    `--allow-read=${t.dir}/c.yaml,${t.dir}/ca.pem`,
    "--allow-env=LOG_STREAM,LOG_TOKENS",
    "--allow-sys=hostname",
  ]);
});

Deno.test("the installed sluice reports a malformed certificate as such, not as a missing permission", async () => {
  await using inst = await install();
  await using work = await tempDir({
    "conf/c.yaml": CONNECTOR.replace(
      "reconnect:",
      'tls: { ca_file: "\${CERTS}/ca.pem" }\n    reconnect:',
    ),
    "conf/p.yaml": PIPELINE,
    "certs/ca.pem": "not a certificate\n",
  });
  const env = { NATS_URL: "nats://127.0.0.1:4222", CERTS: `${work.dir}/certs` };
  const r = await exec(inst.sluice, ["check", "conf"], { cwd: work.dir, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /ca\.pem/);
  assert.doesNotMatch(r.stderr, /permission/);
});

Deno.test("sluice permissions of an invalid configuration grants what reporting it takes", async () => {
  await using t = await tempDir({ "bad.yaml": "pipelines:\n  p: { source: 1 }\nx: ${X}\n" });
  const flags = await derive(["run", `${t.dir}/bad.yaml`], {}, t.dir);
  assert.deepEqual(flags, [
    `--allow-read=${t.dir}/bad.yaml`,
    "--allow-env=LOG_STREAM,LOG_TOKENS,X",
    "--allow-sys=hostname",
  ]);
});

Deno.test("sluice permissions status: the health address only; help and schema: nothing", async () => {
  assert.deepEqual(await derive(["status"]), ["--allow-net=127.0.0.1:9180"]);
  assert.deepEqual(await derive(["status", "--url", "http://[::1]:9"]), ["--allow-net=[::1]:9"]);
  assert.deepEqual(await derive(["status", "--url", "https://gw.local"]), [
    "--allow-net=gw.local:443",
  ]);
  assert.deepEqual(await derive(["schema"]), []);
  assert.deepEqual(await derive(["--help"]), []);
});

Deno.test("denoFlags() refuses a path with a comma, which Deno's lists cannot hold", () => {
  const grants: Grants = {
    read: new Set(["/etc/a,b"]),
    write: new Set(),
    net: new Set(),
    env: new Set(),
    sys: new Set(),
  };
  assert.throws(() => denoFlags(grants), (e) => e instanceof UsageError && /comma/.test(e.message));
});

// --- the installed command, through real processes ---------------------------------------------

const CONNECTOR = `# yaml-language-server: $schema=x
connectors:
  local:
    type: nats
    servers: \${NATS_URL}
    reconnect: { wait: 100ms, jitter: 50ms }
health: { listen: "127.0.0.1:0" }
`;

const PIPELINE = `
pipelines:
  readings:
    source: { connector: local, subject: sensors.> }
    filter: temperature > 30
    sinks:
      - connector: local
        subject: alerts.{site}
        buffer: { path: outbox/alerts.db }
`;

/** Installs into a temp prefix; the launcher path and a disposer. */
async function install(): Promise<{ sluice: string; prefix: string } & AsyncDisposable> {
  const t = await tempDir();
  const r = await exec("bash", ["deploy/install-cli.sh", "--prefix", t.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /installed .*\/bin\/sluice/);
  return {
    sluice: `${t.dir}/bin/sluice`,
    prefix: t.dir,
    [Symbol.asyncDispose]: () => t[Symbol.asyncDispose](),
  };
}

Deno.test("the installed sluice checks, runs and reports status of a config directory", async () => {
  await using server = await NatsServer.start();
  await using inst = await install();
  await using work = await tempDir({ "conf/10-nats.yaml": CONNECTOR, "conf/20-p.yaml": PIPELINE });
  const env = { NATS_URL: server.url };

  // From any directory, one short command each.
  const checked = await exec(inst.sluice, ["check", "conf"], { cwd: work.dir, env });
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /^ok: 1 connector, 1 pipeline in 2 files/);

  const flags = await exec(inst.sluice, ["permissions", "run", "conf"], { cwd: work.dir, env });
  assert.equal(flags.code, 0, flags.stderr);
  const port = new URL(server.url).port;
  assert.deepEqual(flags.stdout.trim().split("\n"), [
    `--allow-read=${work.dir}/conf,${work.dir}/outbox`,
    `--allow-write=${work.dir}/outbox`,
    `--allow-net=127.0.0.1,127.0.0.1:${port}`,
    "--allow-env=LOG_STREAM,LOG_TOKENS,NATS_URL",
    "--allow-sys=hostname",
  ]);

  // The harness runs `<runtime> run <flags> <entry> <args>`: with the launcher as the runtime,
  // no flags and the directory as the entry, that is `sluice run conf --log-format json`.
  await using sluice = SluiceProcess.start(["--log-format", "json"], {
    runtime: [inst.sluice],
    denoFlags: [],
    entry: "conf",
    cwd: work.dir,
    env,
  });
  const listening = await sluice.waitForMsg("health listening");
  await sluice.waitForMsg("started");
  const nc = await connect({ servers: server.url });
  try {
    const alerts = new Collector<string>();
    nc.subscribe("alerts.>", { callback: (_e, m) => alerts.push(`${m.subject} ${m.string()}`) });
    await nc.flush();
    nc.publish("sensors.t.1", '{"temperature": 31, "site": "oslo"}');
    nc.publish("sensors.t.2", '{"temperature": 12, "site": "oslo"}');
    nc.publish("sensors.t.3", '{"temperature": 40, "site": "bergen"}');
    await alerts.waitForCount(2, 15_000, "two alerts");
    assert.deepEqual(alerts.items, [
      'alerts.oslo {"temperature": 31, "site": "oslo"}',
      'alerts.bergen {"temperature": 40, "site": "bergen"}',
    ]);
  } finally {
    await nc.close();
  }
  assert.ok((await Deno.stat(`${work.dir}/outbox`)).isDirectory, "the outbox directory exists");

  const status = await exec(inst.sluice, ["status", "--url", String(listening.url)], {
    cwd: work.dir,
  });
  assert.equal(status.code, 0, status.stderr + status.stdout);
  assert.match(status.stdout, /readings/);

  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("the installed sluice reports configuration errors with their place, exit 2", async () => {
  await using inst = await install();
  await using work = await tempDir({
    "conf/p.yaml": PIPELINE.replace("subject: sensors.>", "subjet: sensors.>"),
    "conf/c.yaml": CONNECTOR,
  });
  const r = await exec(inst.sluice, ["check", "conf"], { cwd: work.dir, env: { NATS_URL: "x" } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /p\.yaml:\d+:\d+: .*subjet/);
  const usage = await exec(inst.sluice, ["frobnicate"], { cwd: work.dir });
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /unknown command "frobnicate"/);
});

Deno.test("a run under the derived permissions cannot read files the configuration does not name", async () => {
  await using inst = await install();
  await using work = await tempDir({
    "conf/c.yaml": CONNECTOR.replace("servers: ${NATS_URL}", "servers: nats://127.0.0.1:1"),
    "conf/p.yaml": PIPELINE,
    "secret.txt": "private",
  });
  // The launcher's own step may read anything; what it hands Sluice is only the config's paths.
  const r = await exec(inst.sluice, ["permissions", "run", "conf"], { cwd: work.dir });
  assert.equal(r.code, 0, r.stderr);
  const read = r.stdout.split("\n").find((l) => l.startsWith("--allow-read="));
  assert.equal(read, `--allow-read=${work.dir}/conf,${work.dir}/outbox`);
  assert.ok(!r.stdout.includes("secret.txt"));
  assert.ok(!r.stdout.split("\n").includes("--allow-read"), "no unrestricted read");
});

Deno.test("install-cli.sh never replaces a sluice it did not install (exit 2)", async () => {
  await using t = await tempDir({ "bin/sluice": "#!/bin/sh\n# the service's executable\n" });
  const r = await exec("bash", ["deploy/install-cli.sh", "--prefix", t.dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is not a launcher installed by this script/);
  assert.equal(
    await Deno.readTextFile(`${t.dir}/bin/sluice`),
    "#!/bin/sh\n# the service's executable\n",
  );
  const again = await exec("bash", ["deploy/install-cli.sh", "--prefix", `${t.dir}/other`]);
  assert.equal(again.code, 0, again.stderr);
  const reinstall = await exec("bash", ["deploy/install-cli.sh", "--prefix", `${t.dir}/other`]);
  assert.equal(reinstall.code, 0, "a launcher it installed is replaced: " + reinstall.stderr);
});
