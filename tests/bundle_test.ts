/**
 * The single-file build. `deno compile` needs a download that is not always available, so these
 * tests prove the property it relies on another way: the CLI bundled into one file by the
 * `bundle` task runs from a directory outside the repository, with the permission flags that
 * `deploy/compile.sh` bakes into executables, and routes events against a real nats-server.
 */
import assert from "node:assert/strict";
import { connect, type Msg } from "@nats-io/transport-node";
import { Mosquitto } from "../dev/mosquitto.ts";
import { collect, testClient } from "../dev/mqtt_client.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { REPO_ROOT, runSluice, SluiceProcess } from "../dev/sluice_process.ts";
import { compileFlags, runBundleTask } from "../dev/tasks.ts";
import { Collector } from "../dev/wait.ts";

/** A temporary directory outside the repository with the bundle in it; removed on dispose. */
interface Install extends AsyncDisposable {
  dir: string;
  bundle: string;
  configDir: string;
  stateDir: string;
}

async function install(config: string): Promise<Install> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "sluice-bundle-" }));
  assert.ok(!dir.startsWith(REPO_ROOT), `${dir} must lie outside the repository`);
  const built = `${dir}/build/sluice.js`;
  await runBundleTask(built);
  // Installed like an operator would: the file alone, away from where it was built.
  const bundle = `${dir}/opt/sluice.js`;
  await Deno.mkdir(`${dir}/opt`);
  await Deno.copyFile(built, bundle);
  await Deno.remove(`${dir}/build`, { recursive: true });
  const configDir = `${dir}/etc`;
  const stateDir = `${dir}/state`;
  await Deno.mkdir(configDir);
  await Deno.mkdir(stateDir);
  await Deno.writeTextFile(`${configDir}/sluice.yaml`, config);
  return {
    dir,
    bundle,
    configDir,
    stateDir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

const CONFIG = `connectors:
  local:
    type: nats
    servers: \${NATS_URL}
    name: \${SLUICE_CLIENT_NAME:-sluice-bundle}
    reconnect: { wait: 100ms, jitter: 50ms }
pipelines:
  temperature-alerts:
    source: { connector: local, subject: sensors.temperature.> }
    filter: temperature > 30
    sinks: [{ connector: local, subject: alerts.high-value }]
`;

Deno.test("the bundle task builds one self-contained file in Latin-1", async () => {
  await using inst = await install(CONFIG);
  const text = await Deno.readTextFile(inst.bundle);
  // Everything is inlined: no npm:, jsr: or relative imports are left to resolve at run time.
  assert.doesNotMatch(text, /^\s*import\b[^;]*\bfrom\s*["'](?:npm:|jsr:|https?:|\.{1,2}\/)/m);
  assert.doesNotMatch(text, /\bimport\s*\(\s*[A-Za-z_$]/, "no import() of a computed specifier");
  // Every character in Latin-1: V8 then holds the source one byte a character, not two.
  assert.doesNotMatch(text, /[\u0100-\uffff]/, "a character above U+00FF is left");
  // V8 holds the whole source while Sluice runs, so its size is resident memory, and once a stack
  // trace is formatted a table of its line ends too: the bundle is minified (1.21 MiB in a few
  // hundred lines when these bounds were set, against 2.55 MiB in 79,000 unminified). Importing
  // zod's `z` object instead of `* as z` (its 40 locales) or MQTT.js's package entry instead of its
  // client module each crosses the size bound (docs/performance.md, "Memory").
  const size = (await Deno.stat(inst.bundle)).size;
  assert.ok(size < 1.4 * 1024 * 1024, `the bundle is ${size} bytes: what made it grow?`);
  const lines = text.split("\n").length;
  assert.ok(lines < 2_000, `the bundle has ${lines} lines: is it still minified?`);
});

Deno.test("install.sh --bundle installs the bundle, the unit and its drop-in, and warms Deno's cache for the service", async () => {
  await using inst = await install(CONFIG);
  const root = `${inst.dir}/root`;
  const result = await new Deno.Command("bash", {
    args: [`${REPO_ROOT}deploy/install.sh`, "--bundle", inst.bundle],
    env: { SLUICE_ROOT: root },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(result.stderr);
  assert.ok(result.success, log);
  assert.deepEqual(
    await Deno.readFile(`${root}/usr/local/lib/sluice/sluice.js`),
    await Deno.readFile(inst.bundle),
  );
  const dropIn = await Deno.readTextFile(
    `${root}/etc/systemd/system/sluice.service.d/bundle.conf`,
  );
  const flags = await compileFlags({ configDir: "/etc/sluice", stateDir: "/var/lib/sluice" });
  for (const flag of flags) assert.ok(dropIn.includes(flag), `${flag} in\n${dropIn}`);
  assert.match(dropIn, /^Environment=DENO_DIR=\/var\/cache\/sluice /m);
  // The service's first start finds the bundle already analysed in its cache directory.
  const cached = [];
  for await (const e of Deno.readDir(`${root}/var/cache/sluice`)) cached.push(e.name);
  assert.ok(cached.some((n) => n.startsWith("dep_analysis_cache")), cached.join(", "));
  assert.match(log, /warmed Deno's cache/);
});

Deno.test("the bundled file checks a config from outside the repository", async () => {
  await using inst = await install(CONFIG);
  const flags = await compileFlags({ configDir: inst.configDir, stateDir: inst.stateDir });
  const result = await runSluice(["check", inst.configDir], {
    entry: inst.bundle,
    denoFlags: ["--no-config", ...flags],
    cwd: inst.dir,
    env: { NATS_URL: "nats://127.0.0.1:4222" },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^ok: 1 connector, 1 pipeline in 1 file/);
});

Deno.test("the bundled file routes an event with the executable's narrow flags, reloads on SIGHUP, stops on SIGTERM", async () => {
  await using server = await NatsServer.start();
  await using inst = await install(CONFIG);
  const flags = await compileFlags({
    configDir: inst.configDir,
    stateDir: inst.stateDir,
    allowNet: `127.0.0.1:${server.port}`,
  });
  assert.ok(flags.includes(`--allow-net=127.0.0.1:${server.port}`), flags.join(" "));
  assert.ok(!flags.some((f) => f === "-A" || f === "--allow-all"), flags.join(" "));

  await using sluice = SluiceProcess.start(["run", "--log-format", "json", inst.configDir], {
    entry: inst.bundle,
    denoFlags: ["--no-config", ...flags],
    cwd: inst.dir,
    env: { NATS_URL: server.url, SLUICE_CLIENT_NAME: "sluice-bundle-test" },
  });
  await sluice.waitForMsg("started");

  const nc = await connect({ servers: server.url, name: "bundle-test-client" });
  try {
    const alerts = new Collector<Msg>();
    nc.subscribe("alerts.>", { callback: (_err, msg) => alerts.push(msg) });
    await nc.flush();
    nc.publish("sensors.temperature.t-1", '{"temperature": 21}');
    nc.publish("sensors.temperature.t-1", '{"temperature": 35.5}');
    const [alert] = await alerts.waitForCount(1, 10_000, "an alert from the bundled file");
    assert.equal(alert!.subject, "alerts.high-value");
    assert.equal(alert!.string(), '{"temperature": 35.5}');
  } finally {
    await nc.close();
  }
  const connz = await server.connz();
  assert.ok(connz.connections.some((c) => c.name === "sluice-bundle-test"));

  // `systemctl reload` sends SIGHUP: re-reading the configuration needs no other permission.
  sluice.signal("SIGHUP");
  await sluice.waitForMsg("reloaded");

  const status = await sluice.stop();
  assert.equal(status.code, 0, sluice.stderr());
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, 2);
  assert.equal(summary?.passed, 1);
});

Deno.test("the bundled file loads MQTT.js on the first MQTT connect, with the executable's narrow flags", async () => {
  await using broker = await Mosquitto.start();
  await using inst = await install(`connectors:
  devices:
    type: mqtt
    url: \${SLUICE_MQTT_URL}
    client_id: sluice-bundle-mqtt
    reconnect: { wait: 100ms, jitter: 50ms }
pipelines:
  temperature-alerts:
    source: { connector: devices, topic: sensors/+/temperature, qos: 1 }
    filter: temperature > 30
    sinks: [{ connector: devices, topic: alerts/high, qos: 1 }]
`);
  const flags = await compileFlags({
    configDir: inst.configDir,
    stateDir: inst.stateDir,
    allowNet: `127.0.0.1:${broker.port}`,
  });
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", inst.configDir], {
    entry: inst.bundle,
    denoFlags: ["--no-config", ...flags],
    cwd: inst.dir,
    // SLUICE_* is among the variables the executable's --allow-env grants by default.
    env: { SLUICE_MQTT_URL: broker.url },
  });
  await sluice.waitForMsg("started");
  await using device = await testClient(broker.url);
  const alerts = await collect(device, "alerts/#");
  await device.publishAsync("sensors/t-1/temperature", '{"temperature": 21}', { qos: 1 });
  await device.publishAsync("sensors/t-1/temperature", '{"temperature": 35.5}', { qos: 1 });
  const [alert] = await alerts.waitForCount(1, 10_000, "an alert through MQTT from the bundle");
  assert.deepEqual([alert!.topic, alert!.payload], ["alerts/high", '{"temperature": 35.5}']);
  assert.equal((await sluice.stop()).code, 0, sluice.stderr());
});

/** One module of `deno info --json`; only the fields used here. */
interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string; isDynamic?: boolean; code?: { specifier?: string } }[];
}

Deno.test("what an executable embeds is found statically: import() only of a fixed module, no files beside the code", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "src/main.ts"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const local = info.modules.filter((m) => m.specifier.startsWith(`file://${REPO_ROOT}`));
  assert.ok(local.length > 10, "the module graph lists the sources");
  for (const m of local) {
    const path = m.specifier.slice(`file://${REPO_ROOT}`.length);
    // The demo and the dev/test harness live in dev/: none of it is part of the program.
    assert.ok(
      path.startsWith("src/") || path === "deno.json",
      `${path}: the program imports only from src/`,
    );
    // A module loaded only when configured (MQTT.js, the JetStream, KV and services clients, re2js)
    // is a local module imported with a string literal: the graph resolves it, so the bundle and
    // an executable embed it like any other. Node's built-in modules (SQLite, crypto, net) are in
    // Deno itself.
    for (const d of (m.dependencies ?? []).filter((d) => d.isDynamic)) {
      assert.ok(
        d.code?.specifier?.startsWith(`file://${REPO_ROOT}src/`) ||
          /^node:[a-z/]+$/.test(d.specifier),
        `${path}: ${d.specifier}`,
      );
    }
    const text = await Deno.readTextFile(`${REPO_ROOT}${path}`);
    // import.meta.main is fine; the URL of the module is not a place to find files at run time.
    assert.doesNotMatch(text, /import\.meta\.(url|resolve|dirname|filename)/, path);
    assert.doesNotMatch(
      text,
      /\bimport\s*\(\s*[^"'\s]/,
      `${path}: import() of a computed specifier`,
    );
  }
});
