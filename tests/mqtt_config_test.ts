/**
 * MQTT configuration: topic filter and template syntax, rendering, the declaration's schema, and
 * `sluice check` pointing at each bad topic or template with file:line:col.
 */
import assert from "node:assert/strict";
import { configDir } from "../dev/config_dir.ts";
import { runSluice } from "../dev/sluice_process.ts";
import {
  mqttConnectorSchema,
  mqttSinkSchema,
  mqttSourceSchema,
} from "../src/connectors/mqtt/schema.ts";
import { compileTemplate, TemplateSyntaxError } from "../src/connectors/mqtt/template.ts";
import {
  compileTopicFilter,
  topicFilterProblem,
  topicMatches,
} from "../src/connectors/mqtt/topic.ts";
import { checkTlsFiles } from "../src/connectors/mqtt/files.ts";

Deno.test("topic filters: + as a whole level, # as the whole last level", () => {
  for (const ok of ["a", "a/b", "+", "#", "a/+/c", "a/#", "+/+/#", "a//b", "/a", "$share/g/a/+"]) {
    assert.equal(topicFilterProblem(ok), undefined, ok);
  }
  const bad: [string, RegExp, number][] = [
    ["", /empty/, 0],
    ["a/#/c", /'#' is only allowed as the last level/, 2],
    ["a/b#", /'#' must be a whole level/, 3],
    ["a/+b/c", /'\+' must be a whole level/, 2],
    ["a/\0", /NUL/, 2],
  ];
  for (const [filter, reason, offset] of bad) {
    const p = topicFilterProblem(filter);
    assert.ok(p, filter);
    assert.match(p.reason, reason);
    assert.equal(p.offset, offset, filter);
  }
});

Deno.test("topic matching follows MQTT: + one level, # any including none, $ topics apart", () => {
  const cases: [string, string, boolean][] = [
    ["sensors/+/temperature", "sensors/d1/temperature", true],
    ["sensors/+/temperature", "sensors/d1/x/temperature", false],
    ["sensors/#", "sensors", true],
    ["sensors/#", "sensors/a/b", true],
    ["#", "$SYS/broker", false],
    ["+/broker", "$SYS/broker", false],
    ["$SYS/#", "$SYS/broker", true],
    ["a//b", "a//b", true],
    ["$share/g/a/+", "a/x", true],
  ];
  for (const [filter, topic, expected] of cases) {
    assert.equal(topicMatches(filter, topic), expected, `${filter} ~ ${topic}`);
  }
});

Deno.test("compiled topic filters decide as the general matcher does", () => {
  const filters = [
    "#",
    "a",
    "a/#",
    "a/b/#",
    "+",
    "+/#",
    "a/+",
    "a/+/c",
    "$SYS/#",
    "a//#",
    "$share/g/a/#",
  ];
  const topics = ["a", "a/", "a/b", "a/b/c", "ab", "ab/c", "b", "$SYS/x", "$SYS", "a//x", "/a", ""];
  for (const f of filters) {
    const compiled = compileTopicFilter(f);
    for (const t of topics) assert.equal(compiled(t), topicMatches(f, t), `${f} ~ ${t}`);
  }
});

Deno.test("topic templates render fields and / tokens; wildcards, / and empty values fail", () => {
  const t = compileTemplate("actuators/{device}/set/{_tokens[1]}");
  assert.equal(t.render({ device: "v-7" }, "commands.valve", "."), "actuators/v-7/set/valve");
  assert.equal(t.render({ device: 7 }, "sensors/d1/x", "/"), "actuators/7/set/d1");
  for (
    const [device, reason] of [
      ["a/b", /contains '\/'/],
      ["+", /contains '\+'/],
      ["x#", /contains '#'/],
      ["", /is empty/],
    ] as const
  ) {
    const r = t.render({ device }, "c.v", ".");
    assert.ok(typeof r !== "string", device);
    assert.match(r.failure, reason);
  }
  const missing = t.render({}, "c.v", ".");
  assert.ok(typeof missing !== "string");
  assert.match(missing.failure, /\{device\} is missing/);
  const few = compileTemplate("x/{_tokens[3]}").render({}, "a/b", "/");
  assert.ok(typeof few !== "string");
  assert.match(few.failure, /has 2 tokens/);
  assert.equal(compileTemplate("plain/topic").isStatic, true);
});

Deno.test("topic templates that can never be valid are refused at compile time, with offsets", () => {
  const cases: [string, RegExp, number][] = [
    ["a/+/{x}", /wildcard '\+'/, 2],
    ["a/#", /wildcard '#'/, 2],
    ["a//{x}", /empty level/, 2],
    ["{x}/", /empty level/, 4],
    ["a/{x", /Unclosed/, 2],
    ["a/{}", /Empty placeholder/, 2],
    ["a/{_tokens}", /needs a token index/, 2],
  ];
  for (const [template, reason, offset] of cases) {
    assert.throws(() => compileTemplate(template), (e: unknown) => {
      assert.ok(e instanceof TemplateSyntaxError, template);
      assert.match(e.message, reason);
      assert.equal(e.offset, offset, template);
      return true;
    });
  }
});

Deno.test("connector schema: defaults, versions, URLs, durations in days", () => {
  const d = mqttConnectorSchema.parse({});
  assert.equal(d.clean_session, false);
  assert.equal(d.version, 5);
  assert.equal(d.session_expiry, 86_400_000);
  assert.equal(d.keepalive, 30_000);
  assert.deepEqual(d.reconnect, { wait: 2000, jitter: 500, max_attempts: -1 });
  assert.equal(d.url[0]?.port, 1883);
  assert.equal(mqttConnectorSchema.parse({ version: "3.1.1" }).version, 4);
  assert.equal(mqttConnectorSchema.parse({ version: 5 }).version, 5);
  assert.equal(mqttConnectorSchema.parse({ version: "5" }).version, 5);
  assert.equal(mqttConnectorSchema.safeParse({ version: 3.1 }).success, false);
  assert.equal(mqttConnectorSchema.safeParse({ version: 4 }).success, false);
  assert.equal(mqttConnectorSchema.parse({ session_expiry: "7d" }).session_expiry, 7 * 86_400_000);
  assert.equal(mqttConnectorSchema.parse({ session_expiry: "90m" }).session_expiry, 5_400_000);
  const urls = mqttConnectorSchema.parse({ url: ["mqtts://broker.example:9000", "10.0.0.2"] }).url;
  assert.deepEqual(urls.map((u) => [u.protocol, u.host, u.port]), [
    ["mqtts", "broker.example", 9000],
    ["mqtt", "10.0.0.2", 1883],
  ]);
  assert.equal(mqttConnectorSchema.parse({ url: "mqtts://b" }).url[0]?.port, 8883);
  for (
    const [url, reason] of [
      ["nats://a:4222", /unsupported scheme/],
      ["mqtt://user:pw@a", /credentials in broker URL "a"/],
      ["ws://a/mqtt", /unsupported scheme/],
      ["mqtt://a/path", /has a path/],
    ] as const
  ) {
    const r = mqttConnectorSchema.safeParse({ url });
    assert.equal(r.success, false, url);
    assert.match(r.error!.issues[0]!.message, reason);
    assert.ok(!r.error!.issues[0]!.message.includes("pw"), "password quoted");
  }
  assert.equal(mqttConnectorSchema.safeParse({ tls: { cert_file: "c.pem" } }).success, false);
  assert.equal(mqttConnectorSchema.safeParse({ keepalive: "100ms" }).success, false);
  assert.equal(mqttConnectorSchema.safeParse({ bogus: 1 }).success, false);
});

Deno.test("source and sink schemas: QoS 0 or 1 (default 1), retain and pass_headers off", () => {
  assert.deepEqual(mqttSourceSchema.parse({ topic: "a/+" }), {
    topic: "a/+",
    qos: 1,
    format: "json",
  });
  assert.equal(mqttSourceSchema.safeParse({ topic: "a/+", qos: 2 }).success, false);
  assert.deepEqual(mqttSinkSchema.parse({ topic: "a/{b}" }), {
    topic: "a/{b}",
    qos: 1,
    retain: false,
    pass_headers: false,
  });
  assert.equal(mqttSinkSchema.safeParse({ topic: "a/#" }).success, false);
});

Deno.test("TLS files are checked at check time: missing, and not PEM", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/junk.pem`, "not a certificate");
    const config = mqttConnectorSchema.parse({
      tls: {
        ca_file: `${dir}/nope.pem`,
        cert_file: `${dir}/junk.pem`,
        key_file: `${dir}/junk.pem`,
      },
    });
    const problems = await checkTlsFiles(config);
    assert.deepEqual(problems.map((p) => p.path.join(".")), [
      "tls.ca_file",
      "tls.cert_file",
      "tls.key_file",
    ]);
    assert.match(problems[0]!.message, /no such file/);
    assert.match(problems[1]!.message, /is not a PEM certificate/);
    assert.ok(!problems.some((p) => p.message.includes("not a certificate")), "contents quoted");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sluice check points at bad MQTT topics, templates and values with file:line:col", async () => {
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    version: 3.1
    will: { topic: "gw/+/status", payload: x }
pipelines:
  a:
    source: { connector: devices, topic: "sensors/#/temp" }
    sinks:
      - connector: devices
        topic: "out/{device}/+"
      - connector: devices
        topic: "out//{device}"
      - connector: devices
        topic: "out/{dev"
        qos: 2
`);
  const r = await runSluice(["check", cfg.file]);
  assert.equal(r.code, 2, r.stderr);
  const f = cfg.file;
  for (
    const line of [
      `${f}:5:14: connectors.devices.version: unexpected number 3.1: expected 5 or "3.1.1"`,
      `${f}:6:24: connectors.devices.will.topic: invalid topic "gw/+/status": wildcard '+' is not allowed here`,
      `${f}:9:51: pipelines.a.source.topic: invalid topic filter "sensors/#/temp": '#' is only allowed as the last level`,
      `${f}:12:30: pipelines.a.sinks[0].topic: Topic template "out/{device}/+" is not a valid topic: wildcard '+' is not allowed here`,
      `${f}:14:21: pipelines.a.sinks[1].topic: Topic template "out//{device}" is not a valid topic: empty level at position 2`,
      `${f}:16:21: pipelines.a.sinks[2].topic: Unclosed '{' at offset 4 in topic template "out/{dev"`,
      `${f}:17:14: pipelines.a.sinks[2].qos: unexpected number 2: expected QoS 0 or 1`,
    ]
  ) {
    assert.ok(r.stderr.includes(line), `missing: ${line}\n--- stderr ---\n${r.stderr}`);
  }
});

Deno.test("sluice check: a dead-letter topic is no template, TLS files exist, no secrets quoted", async () => {
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    auth: {username: me, password: topsecret}
    tls: {ca_file: /nonexistent/ca.pem}
pipelines:
  a:
    source: { connector: devices, topic: "sensors/+" }
    sinks: [{ connector: devices, topic: "out/{_tokens[1]}" }]
    dead_letter: { connector: devices, topic: "dlq/{x}" }
`);
  const r = await runSluice(["check", cfg.file]);
  assert.equal(r.code, 2, r.stderr);
  assert.ok(
    r.stderr.includes(
      `${cfg.file}:6:11: connectors.devices.tls.ca_file: cannot read "/nonexistent/ca.pem": no such file`,
    ),
    r.stderr,
  );
  assert.ok(
    r.stderr.includes(
      `${cfg.file}:11:47: pipelines.a.dead_letter.topic: a dead-letter topic cannot be a template`,
    ),
    r.stderr,
  );
  assert.ok(!r.stderr.includes("topsecret"));
});

Deno.test("sluice check accepts a valid gateway config with MQTT and NATS connectors", async () => {
  const r = await runSluice(["check", "examples/gateway"]);
  assert.equal(r.code, 0, r.stderr);
});
