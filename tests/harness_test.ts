// Tests of the integration-test harness itself, against a real nats-server.
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer, NatsServerNotFoundError, NatsServerStartError } from "../dev/nats_server.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";
import {
  Collector,
  Deferred,
  Latch,
  pollUntil,
  TIMEOUT_SCALE_ENV,
  TimeoutError,
  timeoutScale,
  withTimeout,
} from "../dev/wait.ts";

/** Connects a client that retries forever and fast, as a reconnect test needs. */
function connectTo(server: NatsServer, name: string): Promise<NatsConnection> {
  return connect({
    servers: server.url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
    reconnectJitter: 0,
  });
}

/** Follows `nc.status()` and resolves one deferred per status type seen. */
function watchStatus(nc: NatsConnection) {
  const seen = {
    disconnect: new Deferred<void>(),
    reconnect: new Deferred<void>(),
  };
  const done = (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") seen.disconnect.resolve();
      if (status.type === "reconnect") seen.reconnect.resolve();
    }
  })();
  return { ...seen, done };
}

async function tcpRefused(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return false;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionRefused;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Writes a JavaScript file that stands in for Sluice, so the process harness is tested alone. */
async function fixture(dir: string, source: string): Promise<string> {
  const path = `${dir}/fake_sluice.js`;
  await Deno.writeTextFile(path, source);
  return path;
}

// Logs like Sluice with --log-format json, then waits for SIGTERM.
const FAKE_SLUICE = `
const log = (level, msg, fields = {}) =>
  console.error(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
// Like Sluice, handle SIGTERM before announcing "started": a test may signal right after.
const keepAlive = setInterval(() => {}, 1000);
Deno.addSignalListener("SIGTERM", () => {
  clearInterval(keepAlive);
  log("info", "stopping");
  log("info", "stopped");
  Deno.exit(0);
});
console.error("a plain text line");
log("info", "connector connected", { connector: "local" });
console.log("args:" + Deno.args.join(","));
log("info", "started");
`;

Deno.test("NatsServer.start() listens on loopback and stop() leaves nothing behind", async () => {
  const server = await NatsServer.start({ jetstream: true });
  const storeDir = server.storeDir;
  try {
    assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
    assert.match(server.monitorUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.running, true);
    const varz = await server.varz();
    assert.equal(varz.port, server.port);
    assert.equal(varz.jetstream?.config?.store_dir, `${storeDir}/jetstream`);
    assert.match(server.output(), /Server is ready/);
  } finally {
    await server.stop();
  }
  assert.equal(server.running, false);
  assert.ok(storeDir, "JetStream was asked for");
  assert.equal(await exists(storeDir), false);
  assert.equal(server.storeDir, undefined);
  assert.equal(await tcpRefused(server.port), true);
  await server.stop(); // A second stop is harmless.
});

Deno.test("NatsServer.start() applies maxPayload and extraConfig", async () => {
  await using server = await NatsServer.start({
    maxPayload: 4096,
    extraConfig: "server_name: harness_probe",
  });
  const varz = await server.varz();
  assert.equal(varz.max_payload, 4096);
  assert.match(server.output(), /harness_probe/);
});

Deno.test("NatsServer.start() tells how to install a missing nats-server", async () => {
  const error = await assertRejectsWith(
    () => NatsServer.start({ executable: "nats-server-that-is-not-installed" }),
    NatsServerNotFoundError,
  );
  assert.match(error.message, /apt-get install nats-server/);
  assert.match(error.message, /"nats-server-that-is-not-installed"/);
});

Deno.test("NatsServer.start() reports the server's output when it exits early", async () => {
  await using first = await NatsServer.start();
  const error = await assertRejectsWith(
    () => NatsServer.start({ port: first.port }),
    NatsServerStartError,
  );
  assert.match(error.message, /exited with code \d+ before the ports file appeared/);
  assert.match(error.output, /address already in use/);
});

Deno.test("NatsServer.connz() shows a connection's name and subscriptions", async () => {
  await using server = await NatsServer.start();
  const nc = await connect({ servers: server.url, name: "harness-probe" });
  try {
    nc.subscribe("harness.connz.>");
    await nc.flush();
    const connz = await server.connz();
    const mine = connz.connections.find((c) => c.name === "harness-probe");
    assert.ok(mine, `no connection named "harness-probe" in ${JSON.stringify(connz)}`);
    assert.deepEqual(mine.subscriptions_list, ["harness.connz.>"]);
    const found = await server.waitForConnection(
      (c) => c.subscriptions_list?.includes("harness.connz.>") ?? false,
      5_000,
      "the probe's subscription",
    );
    assert.equal(found.cid, mine.cid);
  } finally {
    await nc.close();
  }
});

Deno.test("NatsServer.restart() keeps the client port and a client reconnects", async () => {
  await using server = await NatsServer.start();
  const port = server.port;
  const nc = await connectTo(server, "harness-reconnect");
  const status = watchStatus(nc);
  try {
    const got = new Collector<string>();
    nc.subscribe("harness.restart", { callback: (_, msg) => got.push(msg.string()) });
    await nc.flush();

    const restarted = await server.restart();
    assert.equal(restarted, server);
    assert.equal(server.port, port);
    await status.disconnect.wait(10_000, "the client to see the disconnect");
    await status.reconnect.wait(10_000, "the client to reconnect");

    // The client re-subscribed on the new server process.
    nc.publish("harness.restart", "after");
    assert.deepEqual(await got.waitForCount(1, 5_000, "the message after the restart"), ["after"]);
  } finally {
    await nc.close();
    await status.done;
  }
});

Deno.test("NatsServer.kill() drops clients until restart() brings the server back", async () => {
  await using server = await NatsServer.start();
  const nc = await connectTo(server, "harness-kill");
  const status = watchStatus(nc);
  try {
    await server.kill();
    assert.equal(server.running, false);
    await status.disconnect.wait(10_000, "the client to see the server die");
    assert.equal(status.reconnect.settled, false);
    await server.restart();
    await status.reconnect.wait(10_000, "the client to reconnect");
    await nc.flush();
  } finally {
    await nc.close();
    await status.done;
  }
});

Deno.test("NatsServer.restart() keeps the JetStream store", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await connectTo(server, "harness-jetstream");
  const status = watchStatus(nc);
  try {
    const create = await nc.request(
      "$JS.API.STREAM.CREATE.HARNESS",
      JSON.stringify({ name: "HARNESS", subjects: ["harness.js.>"], storage: "file" }),
    );
    assert.equal(create.json<{ error?: unknown }>().error, undefined);
    await server.kill();
    await server.restart();
    await status.reconnect.wait(10_000, "the client to reconnect");
    const info = await nc.request("$JS.API.STREAM.INFO.HARNESS", "", { timeout: 5_000 });
    const body = info.json<{ config?: { name?: string }; error?: unknown }>();
    assert.equal(body.error, undefined);
    assert.equal(body.config?.name, "HARNESS");
  } finally {
    await nc.close();
    await status.done;
  }
  assert.ok(server.storeDir && await exists(server.storeDir));
});

Deno.test("withTimeout() rejects with what it waited for and how long", async () => {
  const never = new Deferred<void>();
  const error = await assertRejectsWith(
    () => withTimeout(never.promise, 10, "a message that never comes"),
    TimeoutError,
  );
  assert.match(error.message, /Timed out after \d+ ms/);
  assert.match(error.message, /waiting for a message that never comes/);
  assert.equal(error.what, "a message that never comes");
});

Deno.test("withTimeout() resolves with the value when it arrives in time", async () => {
  assert.equal(await withTimeout(Promise.resolve(42), 1_000, "the answer"), 42);
  await assert.rejects(
    () => withTimeout(Promise.reject(new RangeError("inner")), 1_000, "x"),
    RangeError,
  );
});

Deno.test("timeoutScale() reads SLUICE_TEST_TIMEOUT_SCALE", () => {
  const before = Deno.env.get(TIMEOUT_SCALE_ENV);
  try {
    Deno.env.delete(TIMEOUT_SCALE_ENV);
    assert.equal(timeoutScale(), 1);
    Deno.env.set(TIMEOUT_SCALE_ENV, "10");
    assert.equal(timeoutScale(), 10);
    Deno.env.set(TIMEOUT_SCALE_ENV, "fast");
    assert.throws(() => timeoutScale(), RangeError);
  } finally {
    if (before === undefined) Deno.env.delete(TIMEOUT_SCALE_ENV);
    else Deno.env.set(TIMEOUT_SCALE_ENV, before);
  }
});

Deno.test("Latch and Collector release waiters on arrival, past or future", async () => {
  const latch = new Latch(2);
  latch.countDown();
  const waiting = latch.wait(1_000, "two counts");
  latch.countDown();
  await waiting;
  assert.equal(latch.remaining, 0);
  await assert.rejects(() => new Latch(1).wait(10, "one count"), /1 still missing/);

  const got = new Collector<number>();
  got.push(1);
  const later = got.waitFor((n) => n > 1, 1_000, "a number above 1");
  got.push(2);
  got.push(3);
  assert.equal(await later, 2);
  assert.deepEqual(await got.waitForCount(3, 1_000, "three numbers"), [1, 2, 3]);
  await assert.rejects(() => got.waitForCount(4, 10, "four numbers"), /got 3 of 4/);
});

Deno.test("pollUntil() returns the first value and times out naming the condition", async () => {
  let calls = 0;
  assert.equal(await pollUntil(() => ++calls === 3 ? "ready" : undefined, 1_000, "x", 1), "ready");
  assert.equal(calls, 3);
  await assert.rejects(
    () => pollUntil(() => undefined, 20, "a file that never appears", 5),
    /Timed out after \d+ ms.* waiting for a file that never appears/,
  );
});

Deno.test("SluiceProcess follows the JSON log and reports the exit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-harness-" });
  try {
    const entry = await fixture(dir, FAKE_SLUICE);
    await using sluice = SluiceProcess.start(["run", "--log-format", "json"], {
      entry,
      denoFlags: [],
      cwd: dir,
    });
    const started = await sluice.waitForMsg("started");
    assert.equal(started.level, "info");
    // Records that arrived before the wait began count too.
    const connected = await sluice.waitForLog(
      (r) => r.msg === "connector connected",
      5_000,
      "the connector",
    );
    assert.equal(connected.connector, "local");
    assert.deepEqual(sluice.lines[0], { kind: "text", text: "a plain text line" });

    const status = await sluice.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    await sluice.waitForMsg("stopped");
    await sluice[Symbol.asyncDispose]();
    assert.equal(sluice.stdout(), "args:run,--log-format,json\n");
    assert.match(sluice.stderr(), /"msg":"stopping"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SluiceProcess.waitForLog() fails early with the output when the process exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-harness-" });
  try {
    const entry = await fixture(dir, `console.error("config: bad pipeline"); Deno.exit(2);`);
    await using sluice = SluiceProcess.start(["run"], { entry, denoFlags: [] });
    const error = await assertRejectsWith(() => sluice.waitForMsg("started", 60_000), Error);
    assert.match(error.message, /exited with code 2 before Sluice to log "started"/);
    assert.match(error.message, /config: bad pipeline/);
    assert.deepEqual(await sluice.status, { code: 2, signal: null });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SluiceProcess disposal kills a process that still runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-harness-" });
  try {
    const entry = await fixture(dir, FAKE_SLUICE);
    const sluice = SluiceProcess.start([], { entry, denoFlags: [] });
    await sluice.waitForMsg("started");
    await sluice[Symbol.asyncDispose]();
    assert.deepEqual(await sluice.status, { code: 137, signal: "SIGKILL" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runSluice() returns the exit code and both outputs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-harness-" });
  try {
    const entry = await fixture(
      dir,
      `console.log("out " + Deno.args.join(" ")); console.error("err"); Deno.exit(3);`,
    );
    const result = await runSluice(["check", "x.yaml"], { entry, denoFlags: [] });
    assert.deepEqual(result, { code: 3, stdout: "out check x.yaml\n", stderr: "err\n" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runSluice() runs the real CLI from the repository by default", async () => {
  const result = await runSluice(["--version"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^sluice \S+/);
});

/** Like `assert.rejects`, but hands back the error for further checks. */
async function assertRejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${type.name}, but nothing was thrown`);
}
