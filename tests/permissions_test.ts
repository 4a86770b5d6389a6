/**
 * Narrow permissions: each task's flags are enough for its job, and a run without a needed flag
 * stops with a message naming the flag to add (instead of retrying forever or a stack trace).
 */
import assert from "node:assert/strict";
import { connect, type Msg } from "@nats-io/transport-node";
import { describeMissing, missingPermission } from "../src/permissions.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { REPO_ROOT, runSluice, SluiceProcess } from "../dev/sluice_process.ts";
import { compileFlags, taskDenoFlags, taskEnv, taskWords } from "../dev/tasks.ts";
import { Collector } from "../dev/wait.ts";

/** A temp dir with files in it; removed on dispose. */
async function tempDir(
  files: Record<string, string>,
): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "sluice-perm-" }));
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

/** `flags` without the ones of `kind` (`--allow-net`, `--allow-net=...`). */
function without(flags: readonly string[], kind: string): string[] {
  return flags.filter((f) => f !== `--allow-${kind}` && !f.startsWith(`--allow-${kind}=`));
}

const PIPELINE = `
pipelines:
  alerts:
    source: { connector: local, subject: sensors.> }
    sinks: [{ connector: local, subject: alerts.out }]
`;

// --- which permission an error lacked -----------------------------------------------------------

Deno.test("missingPermission() names the flag of a NotCapable error, also as a cause", () => {
  const net = new Deno.errors.NotCapable(
    'Requires net access to "127.0.0.1:4222", run again with the --allow-net flag',
  );
  const wrapped = new Error("connect failed", { cause: new Error("inner", { cause: net }) });
  assert.deepEqual(missingPermission(wrapped), {
    kind: "net",
    target: "127.0.0.1:4222",
    lookup: false,
    flag: "--allow-net=127.0.0.1:4222",
  });
  const env = new Deno.errors.NotCapable(
    "Requires env access, run again with the --allow-env flag",
  );
  assert.equal(missingPermission(env)?.flag, "--allow-env");
  assert.equal(
    missingPermission(new AggregateError([new Error("a"), env]))?.flag,
    "--allow-env",
  );
});

Deno.test("missingPermission() recognises a host name Deno may not look up", () => {
  const e = Object.assign(new Error("getaddrinfo EPERM nats.example.com"), {
    code: "EPERM",
    syscall: "getaddrinfo",
    hostname: "nats.example.com",
  });
  const missing = missingPermission(e);
  assert.equal(missing?.flag, "--allow-net=nats.example.com");
  assert.match(describeMissing(missing!), /look up the host "nats\.example\.com"/);
  assert.match(describeMissing(missing!), /or name the server by its IP address/);
});

Deno.test("missingPermission() ignores errors that are not about permissions", () => {
  assert.equal(missingPermission(new Error("connection refused")), undefined);
  assert.equal(missingPermission(new Deno.errors.PermissionDenied("EACCES")), undefined);
  assert.equal(missingPermission("text"), undefined);
  const loop: Error & { cause?: unknown } = new Error("loop");
  loop.cause = loop;
  assert.equal(missingPermission(loop), undefined);
});

Deno.test("describeMissing() says what was refused and the flag to add", () => {
  const text = (message: string) =>
    describeMissing(missingPermission(new Deno.errors.NotCapable(message))!);
  assert.equal(
    text('Requires read access to "/etc/sluice", run again with the --allow-read flag'),
    'permission to read "/etc/sluice" is missing: run with --allow-read=/etc/sluice',
  );
  assert.equal(
    text('Requires env access to "NATS_URL", run again with the --allow-env flag'),
    'permission to read environment variable "NATS_URL" is missing: run with --allow-env=NATS_URL',
  );
  assert.equal(
    text('Requires sys access to "hostname", run again with the --allow-sys flag'),
    'permission to read system information "hostname" is missing: run with --allow-sys=hostname',
  );
});

// --- the tasks' flags are enough ----------------------------------------------------------------

Deno.test("no task grants every permission at once", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  };
  for (const [name, task] of Object.entries(config.tasks)) {
    assert.doesNotMatch(task, /(^|\s)(-A|--allow-all)(\s|$)/, `task ${name}: ${task}`);
  }
});

Deno.test("the check task's flags validate the shipped examples", async () => {
  const flags = await taskDenoFlags("check");
  assert.ok(!flags.some((f) => f === "--allow-read" || f === "--allow-env"), flags.join(" "));
  assert.ok(!flags.some((f) => f.startsWith("--allow-net")), "check needs no network");
  const result = await runSluice(["check"], { denoFlags: flags, cwd: REPO_ROOT });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^ok: /);
});

Deno.test("the start task's flags and environment run the shipped examples against a real server", async () => {
  await using server = await NatsServer.start();
  const flags = await taskDenoFlags("start");
  assert.deepEqual((await taskWords("start")).slice(-2), ["src/main.ts", "run"]);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json"], {
    denoFlags: flags,
    cwd: REPO_ROOT,
    env: {
      ...await taskEnv("start"),
      NATS_URL: server.url,
      UPLINK_URL: server.url,
      SLUICE_CLIENT_NAME: "sluice-start-task",
    },
  });
  await sluice.waitForMsg("started");
  const nc = await connect({ servers: server.url, name: "permissions-test-client" });
  try {
    const alerts = new Collector<Msg>();
    nc.subscribe("alerts.>", { callback: (_err, msg) => alerts.push(msg) });
    await nc.flush();
    nc.publish("sensors.temperature.t-9", '{"temperature": 31, "site": "berlin"}');
    await alerts.waitForCount(1, 10_000, "an alert routed by the start task");
  } finally {
    await nc.close();
  }
  assert.ok((await server.connz()).connections.some((c) => c.name === "sluice-start-task"));
  assert.equal((await sluice.stop()).code, 0, sluice.stderr());
});

// --- a missing flag is named ----------------------------------------------------------------------

Deno.test("without --allow-net sluice run stops at once and names the flag", async () => {
  await using server = await NatsServer.start();
  const flags = without(await taskDenoFlags("start"), "net");
  const result = await runSluice(["run"], {
    denoFlags: flags,
    cwd: REPO_ROOT,
    env: { NATS_URL: server.url },
    timeoutMs: 20_000,
  });
  assert.equal(result.code, 1, result.stderr);
  assert.ok(
    result.stderr.includes(
      `Connector \\"local\\": permission to connect to 127.0.0.1:${server.port} is missing: ` +
        `run with --allow-net=127.0.0.1:${server.port}`,
    ) ||
      result.stderr.includes(
        `Connector "local": permission to connect to 127.0.0.1:${server.port} is missing: ` +
          `run with --allow-net=127.0.0.1:${server.port}`,
      ),
    result.stderr,
  );
  assert.doesNotMatch(result.stderr, /retrying/);
});

Deno.test("a server named by host needs the name granted too, and the message says so", async () => {
  await using server = await NatsServer.start();
  await using cfg = await tempDir({
    "sluice.yaml":
      `connectors:\n  local: { type: nats, servers: "nats://localhost:${server.port}" }\n` +
      PIPELINE,
  });
  const base = [`--allow-read=${cfg.dir}`, "--allow-env=LOG_TOKENS,LOG_STREAM"];
  const denied = await runSluice(["run", cfg.dir], {
    denoFlags: [...base, `--allow-net=127.0.0.1:${server.port}`],
    timeoutMs: 20_000,
  });
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(
    denied.stderr,
    /look up the host \\?"localhost\\?" is missing: run with --allow-net=localhost/,
  );

  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.dir], {
    denoFlags: [...base, `--allow-net=localhost,127.0.0.1:${server.port}`],
  });
  await sluice.waitForMsg("started");
  assert.equal((await sluice.stop()).code, 0, sluice.stderr());
});

Deno.test("without --allow-read of the config sluice check names the flag", async () => {
  const flags = without(await taskDenoFlags("check"), "read");
  const result = await runSluice(["check"], { denoFlags: flags, cwd: REPO_ROOT });
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /^connectors:1:1: cannot read it: .*run with --allow-read=connectors$/m,
  );
  assert.match(result.stderr, /run with --allow-read=pipelines/);
});

Deno.test("without --allow-env of a variable the config uses sluice check names it", async () => {
  const flags = [
    ...without(await taskDenoFlags("check"), "env"),
    "--allow-env=LOG_TOKENS,LOG_STREAM",
  ];
  const result = await runSluice(["check"], { denoFlags: flags, cwd: REPO_ROOT });
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /^connectors\/local\.yaml:\d+:\d+: connectors\.local\.servers: permission to read environment variable "NATS_URL" is missing: run with --allow-env=NATS_URL$/m,
  );
});

Deno.test("without any --allow-env sluice check names the YAML parser's variables", async () => {
  const flags = without(await taskDenoFlags("check"), "env");
  const result = await runSluice(["check"], { denoFlags: flags, cwd: REPO_ROOT });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /run with --allow-env=LOG_TOKENS,LOG_STREAM plus the variables/);
  assert.doesNotMatch(result.stderr, /Uncaught|\n\s+at /);
});

Deno.test("without --allow-read of a credentials file sluice run names it", async () => {
  await using cfg = await tempDir({
    "sluice.yaml": `connectors:
  local:
    type: nats
    servers: "nats://127.0.0.1:1"
    auth: { nkey_seed_file: SEED }
` + PIPELINE,
    "seed.nk": "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4\n",
  });
  const seed = `${cfg.dir}/seed.nk`;
  const file = `${cfg.dir}/sluice.yaml`;
  await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace("SEED", seed));
  const result = await runSluice(["run", file], {
    denoFlags: [`--allow-read=${file}`, "--allow-env=LOG_TOKENS,LOG_STREAM", "--allow-net"],
    timeoutMs: 20_000,
  });
  // Files that connectors name are read when the config loads: a config error (issue 12 #10).
  assert.equal(result.code, 2, result.stderr);
  assert.ok(result.stderr.includes(`run with --allow-read=${seed}`), result.stderr);
  assert.doesNotMatch(result.stderr, /SUAIBDPB/, "the seed is never logged");
});

Deno.test("without --allow-read of tls.ca_file sluice run names it, not a missing file", async () => {
  await using cfg = await tempDir({
    "ca.pem": "-----BEGIN CERTIFICATE-----\nnot read\n-----END CERTIFICATE-----\n",
  });
  const ca = `${cfg.dir}/ca.pem`;
  const file = `${cfg.dir}/sluice.yaml`;
  await Deno.writeTextFile(
    file,
    `connectors:\n  local: { type: nats, servers: "tls://127.0.0.1:1", tls: { ca_file: "${ca}" } }\n` +
      PIPELINE,
  );
  const result = await runSluice(["run", file], {
    denoFlags: [`--allow-read=${file}`, "--allow-env=LOG_TOKENS,LOG_STREAM", "--allow-net"],
    timeoutMs: 20_000,
  });
  // Files that connectors name are read when the config loads: a config error (issue 12 #10).
  assert.equal(result.code, 2, result.stderr);
  assert.ok(result.stderr.includes(`run with --allow-read=${ca}`), result.stderr);
  assert.doesNotMatch(result.stderr, /doesn't exist/);
});

Deno.test("without --allow-sys=hostname a health section without instance names the flag", async () => {
  await using cfg = await tempDir({
    "sluice.yaml": `connectors:\n  local: { type: nats }\nhealth: { listen: false }\n` + PIPELINE,
  });
  const result = await runSluice(["check", cfg.dir], {
    denoFlags: [`--allow-read=${cfg.dir}`, "--allow-env=LOG_TOKENS,LOG_STREAM"],
  });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--allow-sys=hostname/);
});

/** Whether `openssl` can be run, to make a CA and a server certificate. */
async function hasOpenssl(): Promise<boolean> {
  try {
    return (await new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  assert.ok(out.success, `openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test({
  name: "--allow-read of tls.ca_file is enough to verify a TLS server",
  ignore: !(await hasOpenssl()),
  fn: async () => {
    await using cfg = await tempDir({ "ext.cnf": "subjectAltName=IP:127.0.0.1,DNS:localhost\n" });
    const d = cfg.dir;
    const subj = (cn: string) => ["-subj", `/CN=${cn}`];
    await openssl(
      d,
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      ...subj("sluice-test-ca"),
    );
    await openssl(
      d,
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      ...subj("127.0.0.1"),
    );
    await openssl(
      d,
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
      "-out",
      "server.pem",
    );
    await using server = await NatsServer.start({
      extraConfig: `tls { cert_file: "${d}/server.pem", key_file: "${d}/server.key" }`,
    });
    const file = `${d}/sluice.yaml`;
    await Deno.writeTextFile(
      file,
      `connectors:\n  local: { type: nats, servers: "tls://127.0.0.1:${server.port}", ` +
        `tls: { ca_file: "${d}/ca.pem" } }\n` + PIPELINE,
    );
    await using sluice = SluiceProcess.start(["run", "--log-format", "json", file], {
      denoFlags: [
        `--allow-read=${file},${d}/ca.pem`,
        "--allow-env=LOG_TOKENS,LOG_STREAM",
        `--allow-net=127.0.0.1:${server.port}`,
      ],
    });
    await sluice.waitForMsg("started");
    assert.equal((await sluice.stop()).code, 0, sluice.stderr());
  },
});

Deno.test("the executable's flags let an outbox live in the state directory and nowhere else", async () => {
  await using server = await NatsServer.start();
  await using root = await tempDir({});
  const configDir = `${root.dir}/etc`;
  const stateDir = `${root.dir}/state`;
  await Deno.mkdir(configDir);
  await Deno.mkdir(stateDir);
  const flags = await compileFlags({ configDir, stateDir, allowNet: `127.0.0.1:${server.port}` });
  const config = (outbox: string) =>
    `connectors:\n  local: { type: nats, servers: "\${NATS_URL}" }
pipelines:
  alerts:
    source: { connector: local, subject: sensors.> }
    sinks: [{ connector: local, subject: alerts.out, buffer: { path: "${outbox}" } }]
`;
  await Deno.writeTextFile(`${configDir}/sluice.yaml`, config(`${stateDir}/alerts.db`));
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", configDir], {
    denoFlags: flags,
    env: { NATS_URL: server.url },
  });
  await sluice.waitForMsg("started");
  assert.equal((await sluice.stop()).code, 0, sluice.stderr());
  assert.ok((await Deno.stat(`${stateDir}/alerts.db`)).isFile);

  await Deno.writeTextFile(`${configDir}/sluice.yaml`, config(`${root.dir}/elsewhere/alerts.db`));
  const denied = await runSluice(["run", configDir], {
    denoFlags: flags,
    env: { NATS_URL: server.url },
    timeoutMs: 20_000,
  });
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stderr, /--allow-write/);
});
