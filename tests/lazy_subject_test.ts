/**
 * A received NATS subject is decoded only when something reads it: templates say whether they
 * use it, the `request` processor and the NATS source's requests honour that, and a message
 * without a reply subject is told apart without decoding one. Real nats-server where messages
 * are involved.
 */
import assert from "node:assert/strict";
import type { Msg } from "@nats-io/nats-core";
import { NatsServer } from "../dev/nats_server.ts";
import { Deferred } from "../dev/wait.ts";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { connect } from "../src/connectors/nats/deno_transport.ts";
import { answerable, hasReply } from "../src/connectors/nats/request.ts";
import { compileTemplate } from "../src/connectors/nats/template.ts";
import { OutboundMessage } from "../src/engine/outbound.ts";
import type { Reply } from "../src/engine/types.ts";
import { newProcessorCounters } from "../src/processors/types.ts";

Deno.test("a template uses the received subject only with a token placeholder", () => {
  assert.equal(compileTemplate("kinds.{_tokens[1]}").usesAddress, true);
  assert.equal(compileTemplate("sites.{site}.{_tokens[2]}").usesAddress, true);
  assert.equal(compileTemplate("sites.{site}").usesAddress, false);
  assert.equal(compileTemplate("alerts.all").usesAddress, false);
});

/** A request processor from YAML whose requests the test records and answers at once. */
function requestProcessor(subject: string) {
  const config = loadConfigTexts([{
    path: "c.yaml",
    text: `connectors:
  local: {type: nats}
pipelines:
  p:
    source: {connector: local, subject: s.>}
    processors:
      - request: {connector: local, subject: "${subject}", into: reg}
    sinks: [{connector: local, subject: out}]
`,
  }], { registry: builtinRegistry(), env: () => undefined });
  const sent: string[] = [];
  const processor = config.pipelines.get("p")!.processors[0]!.factory.create({
    counters: newProcessorCounters(),
    now: () => 0,
    request(_connector, subject) {
      sent.push(subject);
      return Promise.resolve<Reply>({ data: new TextEncoder().encode('{"ok":true}') });
    },
  });
  return { processor, sent };
}

/** Event metadata that counts how often its subject is read. */
function countingMeta(subject: string) {
  const meta = {
    reads: 0,
    get subject() {
      meta.reads++;
      return subject;
    },
  };
  return meta;
}

Deno.test("request renders a field-only subject without reading the received subject", async () => {
  const { processor, sent } = requestProcessor("reg.{id}");
  const meta = countingMeta("s.site-a.t1");
  assert.deepEqual(await processor.process({ id: "t1" }, meta), { id: "t1", reg: { ok: true } });
  assert.deepEqual(sent, ["reg.t1"]);
  assert.equal(meta.reads, 0);
});

Deno.test("request reads the received subject for a token placeholder", async () => {
  const { processor, sent } = requestProcessor("reg.{_tokens[1]}.{id}");
  const meta = countingMeta("s.site-a.t1");
  assert.deepEqual(await processor.process({ id: "t1" }, meta), { id: "t1", reg: { ok: true } });
  assert.deepEqual(sent, ["reg.site-a.t1"]);
  assert.equal(meta.reads, 1);
});

Deno.test("hasReply() tells requests from plain messages; answerable() keeps the message", async () => {
  await using server = await NatsServer.start();
  const nc = await connect({ servers: server.url });
  try {
    const got: Msg[] = [];
    const two = new Deferred<void>();
    const answered = new Deferred<string>();
    nc.subscribe("svc.>", {
      callback: (_err, msg) => {
        got.push(msg);
        if (got.length === 2) two.resolve();
      },
    });
    nc.subscribe("answers.one", {
      callback: (_err, msg) => void answered.resolve(msg.string()),
    });
    await nc.flush();
    nc.publish("svc.plain", "{}");
    nc.publish("svc.request", "{}", { reply: "answers.one" });
    await two.promise;
    const [plain, request] = got as [Msg, Msg];
    assert.equal(hasReply(plain), false);
    assert.equal(hasReply(request), true);
    const publish = (subject: string, data: Uint8Array) => {
      nc.publish(subject, data);
      return undefined;
    };
    assert.equal(answerable(plain, publish), plain);
    const inbound = answerable(request, publish);
    assert.equal(inbound.subject, "svc.request");
    assert.equal(new TextDecoder().decode(inbound.data), "{}");
    assert.equal(inbound.headers, undefined);
    assert.equal(inbound.answer?.(new TextEncoder().encode("done")), undefined);
    assert.equal(await answered.promise, "done");
  } finally {
    await nc.close();
  }
});

Deno.test("an outbound message reads the subject, headers and separator of its source on demand", () => {
  let reads = 0;
  const from = {
    get subject() {
      reads++;
      return "home/kitchen/t1";
    },
    data: new Uint8Array([1]),
    headers: undefined,
    tokenSeparator: "/",
  };
  const out = new OutboundMessage(from, new Uint8Array([2]));
  assert.deepEqual(out.data, new Uint8Array([2]));
  assert.equal(reads, 0);
  assert.equal(out.subject, "home/kitchen/t1");
  assert.equal(out.headers, undefined);
  assert.equal(out.tokenSeparator, "/");
  assert.equal(reads, 1);
});
