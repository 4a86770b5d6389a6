/**
 * `publishData`, the NATS connector's publish without TextEncoder on the protocol line: on a real
 * nats-server, the bytes arrive exactly as `nc.publish` sends them, the client's statistics count
 * them, and whatever `nc.publish` refuses it refuses with the same error.
 */
import assert from "node:assert/strict";
import { errors, type NatsConnection } from "@nats-io/nats-core";
import { NatsServer } from "../dev/nats_server.ts";
import { connect } from "../src/connectors/nats/deno_transport.ts";
import { publishData } from "../src/connectors/nats/publish.ts";

/** Subscribes to `subject` and collects `count` payloads with their subjects. */
async function collect(nc: NatsConnection, subject: string, count: number) {
  const got: { subject: string; data: Uint8Array; headers: boolean }[] = [];
  const sub = nc.subscribe(subject, { max: count });
  await nc.flush();
  const done = (async () => {
    for await (const m of sub) got.push({ subject: m.subject, data: m.data, headers: !!m.headers });
    return got;
  })();
  return done;
}

Deno.test("publishData() delivers payloads exactly, in order, with nc.publish's statistics", async () => {
  await using server = await NatsServer.start();
  const nc = await connect({ servers: server.url });
  try {
    const texts = ['{"a":1}', "", "Tromsø ✓", "x".repeat(2000), '{"b":2}'];
    const subjects = ["out.a", "out.b", "out.æ", "out.c", "out.d"];
    const received = collect(nc, "out.>", texts.length);
    const before = nc.stats();
    texts.forEach((t, i) => publishData(nc, subjects[i]!, new TextEncoder().encode(t)));
    const got = await received;
    assert.deepEqual(got.map((m) => m.subject), subjects);
    assert.deepEqual(got.map((m) => new TextDecoder().decode(m.data)), texts);
    assert.ok(got.every((m) => !m.headers));
    const after = nc.stats();
    assert.equal(after.outMsgs - before.outMsgs, texts.length);
    const bytes = texts.reduce((n, t) => n + new TextEncoder().encode(t).length, 0);
    assert.equal(after.outBytes - before.outBytes, bytes);
  } finally {
    await nc.close();
  }
});

Deno.test("publishData() refuses an invalid subject as nc.publish does", async () => {
  await using server = await NatsServer.start();
  const nc = await connect({ servers: server.url });
  try {
    for (const subject of ["", "a b", "a\r\nPUB x 1"]) {
      assert.throws(() => publishData(nc, subject, new Uint8Array(1)), errors.InvalidSubjectError);
    }
  } finally {
    await nc.close();
  }
});

Deno.test("publishData() refuses a payload over the server's max_payload", async () => {
  await using server = await NatsServer.start({ maxPayload: 1024 });
  const nc = await connect({ servers: server.url });
  try {
    assert.throws(
      () => publishData(nc, "out.big", new Uint8Array(1025)),
      errors.InvalidArgumentError,
    );
    // The connection is still usable afterwards.
    const received = collect(nc, "out.ok", 1);
    publishData(nc, "out.ok", new Uint8Array(1024));
    assert.equal((await received)[0]!.data.length, 1024);
  } finally {
    await nc.close();
  }
});

Deno.test("publishData() refuses to publish on a closed connection", async () => {
  await using server = await NatsServer.start();
  const nc = await connect({ servers: server.url });
  await nc.drain();
  assert.throws(() => publishData(nc, "out.x", new Uint8Array(1)), errors.ClosedConnectionError);
});
