/**
 * Issue 12 item 9: no secret in any config message, whatever the key. Values under a connector
 * type's secret keys, `${VAR}` values that landed there, and the userinfo of server URLs are never
 * printed: not by `loadConfigTexts`, not by `sluice check`, not in a rejected reload's summary.
 */
import assert from "node:assert/strict";
import { rejectionSummary } from "../src/cli/reloader.ts";
import { loadConfigTexts } from "../src/config/load.ts";
import { Secrets } from "../src/config/secrets.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";

const registry = builtinRegistry();

function rejected(text: string, vars: Record<string, string> = {}): ConfigErrors {
  try {
    loadConfigTexts([{ path: "c.yaml", text }], { registry, env: (n) => vars[n] });
  } catch (e) {
    if (e instanceof ConfigErrors) return e;
    throw e;
  }
  assert.fail("expected the configuration to be rejected");
}

/** Every message and path of a rejected load, one line each. */
const printed = (e: ConfigErrors) => e.errors.map(String).join("\n");

Deno.test("a password in a malformed server URL is not printed", () => {
  const e = rejected(`connectors:
  local:
    type: nats
    servers: nats://sluice:s3cretpw@10.0.0.1:99999
`);
  assert.equal(e.errors.length, 1, printed(e));
  assert.match(
    printed(e),
    /connectors\.local\.servers: invalid server URL "nats:\/\/\*\*\*@10\.0\.0\.1:99999"/,
  );
  assert.doesNotMatch(printed(e), /s3cretpw|sluice:/);
});

Deno.test("a password in a server URL of an unsupported scheme is not printed", () => {
  const e = rejected(`connectors:
  local:
    type: nats
    servers: [nats://a:4222, "http://sluice:s3cretpw@b:4222"]
`);
  assert.equal(e.errors.length, 1, printed(e));
  assert.doesNotMatch(printed(e), /s3cretpw/);
});

Deno.test("a password built from \${VAR}s in a URL is not printed, nor each variable's part", () => {
  const e = rejected(
    `connectors:
  local:
    type: nats
    servers: "nats://\${NATS_USER}:\${PW_A}\${PW_B}@10.0.0.1:port"
    name: "\${PW_B}"
    ping_interval: \${PW_A}
`,
    { NATS_USER: "gateway", PW_A: "first-half", PW_B: "second-half" },
  );
  assert.equal(e.errors.length, 2, printed(e));
  assert.doesNotMatch(printed(e), /first-half|second-half|gateway/);
});

Deno.test("a \${VAR} that landed under auth is not printed in a message about another key", () => {
  const e = rejected(
    `connectors:
  local:
    type: nats
    auth: { user: gateway, password: "\${PW}" }
    ping_interval: \${PW}
    max_pending: "\${PW}"
    reconnect: { wait: "x\${PW}" }
`,
    { PW: "hunter2-hunter2" },
  );
  assert.equal(e.errors.length, 3, printed(e));
  assert.match(printed(e), /ping_interval: invalid duration "\*\*\*"/);
  assert.doesNotMatch(printed(e), /hunter2/);
});

Deno.test("a secret written as a key under auth is neither in the message nor in the path", () => {
  const e = rejected(`connectors:
  local:
    type: nats
    auth: { user: gateway, password=hunter2x: null }
`);
  assert.equal(e.errors.length, 1, printed(e));
  assert.equal(
    printed(e),
    "c.yaml:4:28: connectors.local.auth: unknown key (not shown: keys here may hold secrets): " +
      "expected one of token, user, password, nkey_seed_file, creds_file",
  );
  assert.doesNotMatch(rejectionSummary(e), /hunter2/);
});

Deno.test("a typo under auth is still named with its hint", () => {
  const e = rejected(`connectors:
  local:
    type: nats
    auth: { tokn: abc }
`);
  assert.match(printed(e), /auth\.tokn: unknown key "tokn" \(did you mean "token"\?\)/);
});

Deno.test("secrets of a connector of unknown type are hidden as every type's would be", () => {
  const e = rejected(
    `connectors:
  local:
    type: nast
    servers: "http://gateway:\${PW}@host"
    auth: { password: "\${PW}" }
pipelines:
  p:
    source: { connector: local, subject: "\${PW}.>", qeue: "\${PW}" }
    sinks: [{ connector: local, subject: "a.\${PW} b" }]
`,
    { PW: "hunter2-hunter2" },
  );
  assert.ok(e.errors.length >= 2, printed(e));
  assert.doesNotMatch(printed(e), /hunter2/);
});

Deno.test("sluice check prints no secret of a URL or a \${VAR}-built password", async () => {
  await using dir = await configDir(`connectors:
  local:
    type: nats
    servers: nats://sluice:\${NATS_PW}@10.0.0.1:99999
    auth: { user: gateway, password: "pre-\${NATS_PW}" }
    ping_interval: \${NATS_PW}
`);
  const { code, stdout, stderr } = await runSluice(["check", dir.dir], {
    env: { NATS_PW: "s3cret-s3cret" },
  });
  assert.equal(code, 2, stderr);
  assert.equal(stdout, "");
  assert.match(stderr, /sluice\.yaml:4:14: connectors\.local\.servers: /);
  assert.match(stderr, /sluice\.yaml:6:20: connectors\.local\.ping_interval: /);
  assert.match(stderr, /2 configuration errors; nothing was started/);
  assert.doesNotMatch(stderr, /s3cret/);
});

Deno.test("a rejected reload logs and reports no secret", async () => {
  await using server = await NatsServer.start();
  const good = `connectors:
  local:
    type: nats
    servers: \${NATS_URL}
pipelines:
  p:
    source: { connector: local, subject: in.> }
    sinks: [{ connector: local, subject: out }]
`;
  await using dir = await configDir(good);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", dir.dir], {
    env: { NATS_URL: server.url, NATS_PW: "s3cret-s3cret" },
  });
  await sluice.waitForMsg("started");
  await Deno.writeTextFile(
    dir.file,
    good.replace(
      "    servers: ${NATS_URL}\n",
      "    servers: nats://sluice:${NATS_PW}@127.0.0.1:99999\n" +
        '    auth: { user: gateway, password: "${NATS_PW}" }\n' +
        "    ping_interval: ${NATS_PW}\n",
    ),
  );
  sluice.signal("SIGHUP");
  const record = await sluice.waitForMsg("reload rejected: the running configuration stays");
  assert.equal((record.errors as string[]).length, 2, JSON.stringify(record));
  sluice.signal("SIGTERM");
  await sluice.status;
  assert.doesNotMatch(sluice.stderr(), /s3cret/);
});

Deno.test("a long secret is hidden where a message shows only its first 40 characters", () => {
  const token = "t0ken-" + "x".repeat(60);
  const e = rejected(
    `connectors:
  local:
    type: nats
    auth: { token: "\${TOKEN}" }
    reconnect: { max_attempts: "\${TOKEN}" }
`,
    { TOKEN: token },
  );
  assert.equal(e.errors.length, 1, printed(e));
  assert.match(printed(e), /max_attempts: expected (an integer|a number), got string "\*\*\*…"$/);
  assert.doesNotMatch(printed(e), /t0ken/);
});

Deno.test("Secrets hides a short secret only as a whole word, a long one anywhere", () => {
  const secrets = new Secrets();
  secrets.add("pw");
  secrets.add("longer-secret");
  assert.equal(
    secrets.redact('got "pw", not pwd; xlonger-secretx; nats://a:b@h and tls://h'),
    'got "***", not pwd; x***x; nats://***@h and tls://h',
  );
});

Deno.test("Secrets hides a secret with quotes in its JSON-quoted form too", () => {
  const secrets = new Secrets();
  secrets.add('pa"ss\\word');
  assert.equal(secrets.redact(JSON.stringify('pa"ss\\word')), '"***"');
});
