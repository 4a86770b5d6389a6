/**
 * `PubAckTracker`, the JetStream sink's way of awaiting PubAcks, on a real nats-server with
 * JetStream: every way a publish can end (stored, a duplicate, no stream, refused by the stream, no
 * answer, not a PubAck, the connection closing, the sink closing) reaches the waiter exactly once
 * with a stable code, and nothing a waiter does can break the shared connection.
 */
import assert from "node:assert/strict";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../dev/nats_server.ts";
import { connect } from "../src/connectors/nats/deno_transport.ts";
import { type PubAckError, PubAckTracker, PubAckWaiter } from "../src/connectors/nats/puback.ts";
import { createLogger } from "../src/log.ts";

type Outcome = { acked: boolean; duplicate?: boolean; error?: PubAckError };

/** A waiter that records every call, so a second one is seen, and resolves on the first. */
class Recorder extends PubAckWaiter {
  readonly subject: string;
  readonly calls: Outcome[] = [];
  readonly #first = Promise.withResolvers<Outcome>();
  constructor(subject: string) {
    super();
    this.subject = subject;
  }
  get outcome(): Promise<Outcome> {
    return this.#first.promise;
  }
  acked(duplicate: boolean): void {
    this.#record({ acked: true, duplicate });
  }
  failed(error: PubAckError): void {
    this.#record({ acked: false, error });
  }
  #record(o: Outcome): void {
    this.calls.push(o);
    this.#first.resolve(o);
  }
}

function logs() {
  const lines: string[] = [];
  return { lines, log: createLogger({ format: "json", write: (l) => lines.push(l) }) };
}

const data = new TextEncoder().encode('{"t":1}');

async function setUp(server: NatsServer): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  await jsm.streams.add({
    name: "ONE",
    subjects: ["one"],
    max_msgs: 1,
    discard: DiscardPolicy.New,
  });
  return nc;
}

Deno.test("a tracker resolves stored messages and duplicates by their PubAck", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  try {
    const tracker = new PubAckTracker(nc, 5000, undefined, logs().log);
    const waiters = [new Recorder("up.a"), new Recorder("up.a"), new Recorder("up.b")];
    const h = () => {
      const m = headers();
      m.set("Nats-Msg-Id", "same");
      return m;
    };
    tracker.publish("up.a", data, h(), waiters[0]!);
    tracker.publish("up.a", data, h(), waiters[1]!);
    tracker.publish("up.b", data, undefined, waiters[2]!);
    const outcomes = await Promise.all(waiters.map((w) => w.outcome));
    assert.deepEqual(outcomes, [
      { acked: true, duplicate: false },
      { acked: true, duplicate: true },
      { acked: true, duplicate: false },
    ]);
    assert.equal(tracker.pending, 0);
    const info = await (await jetstreamManager(nc)).streams.info("UP");
    assert.equal(info.state.messages, 2);
    tracker.close();
    assert.ok(waiters.every((w) => w.calls.length === 1));
  } finally {
    await nc.close();
  }
});

Deno.test("a publish no stream captures fails with no_stream, naming the subject", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  try {
    const tracker = new PubAckTracker(nc, 5000, undefined, logs().log);
    const w = new Recorder("nowhere.x");
    tracker.publish("nowhere.x", data, undefined, w);
    const o = await w.outcome;
    assert.equal(o.error?.code, "no_stream");
    assert.match(o.error?.message ?? "", /no stream captures subject "nowhere\.x"/);
    // The tracker stays usable: a failed publish is the publish's, not the connection's.
    assert.ok(tracker.usable);
    tracker.close();
  } finally {
    await nc.close();
  }
});

Deno.test("a message the stream refuses fails with refused and the stream's reason", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  try {
    const tracker = new PubAckTracker(nc, 5000, undefined, logs().log);
    const first = new Recorder("one");
    const second = new Recorder("one");
    tracker.publish("one", data, undefined, first);
    assert.deepEqual(await first.outcome, { acked: true, duplicate: false });
    tracker.publish("one", data, undefined, second);
    const o = await second.outcome;
    assert.equal(o.error?.code, "refused");
    assert.match(o.error?.message ?? "", /maximum messages exceeded \(JetStream error 10077\)/);
    tracker.close();
  } finally {
    await nc.close();
  }
});

Deno.test("a publish nothing answers times out, not before its timeout, once", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  try {
    // A subscriber that never answers: the server then has a responder, so no 503.
    const silent = nc.subscribe("silent");
    await nc.flush();
    const tracker = new PubAckTracker(nc, 200, undefined, logs().log);
    const w = new Recorder("silent");
    const t0 = performance.now();
    tracker.publish("silent", data, undefined, w);
    const o = await w.outcome;
    const waited = performance.now() - t0;
    assert.equal(o.error?.code, "timeout");
    assert.equal(o.error?.message, "no PubAck within 200 ms");
    assert.ok(waited >= 200, `expired after ${waited} ms`);
    assert.equal(tracker.pending, 0);
    silent.unsubscribe();
    tracker.close();
    assert.equal(w.calls.length, 1);
  } finally {
    await nc.close();
  }
});

Deno.test("an answer after the timeout is ignored; an answer that is no PubAck fails", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  try {
    const tracker = new PubAckTracker(nc, 100, undefined, logs().log);
    const w = new Recorder("late");
    const odd = new Recorder("odd");
    // Answers only once the publish has expired.
    const late = Promise.withResolvers<void>();
    nc.subscribe("late", {
      callback: (_e, m) => {
        w.outcome.then(() => {
          m.respond('{"stream":"X","seq":1}');
          late.resolve();
        });
      },
    });
    nc.subscribe("odd", {
      callback: (_e, m) => {
        m.respond("hello");
      },
    });
    await nc.flush();
    tracker.publish("late", data, undefined, w);
    tracker.publish("odd", data, undefined, odd);
    assert.equal((await w.outcome).error?.code, "timeout");
    const o = await odd.outcome;
    assert.equal(o.error?.code, "invalid");
    assert.match(o.error?.message ?? "", /the answer to a publish on "odd" is no PubAck/);
    await late.promise;
    await nc.flush(); // the late answer has come back through the server
    assert.equal(w.calls.length, 1);
    tracker.close();
  } finally {
    await nc.close();
  }
});

Deno.test("closing the connection or the tracker fails what waits with closed", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  nc.subscribe("silent");
  await nc.flush();
  const a = new PubAckTracker(nc, 60_000, undefined, logs().log);
  const b = new PubAckTracker(nc, 60_000, undefined, logs().log);
  const wa = new Recorder("silent");
  const wb = new Recorder("silent");
  a.publish("silent", data, undefined, wa);
  b.publish("silent", data, undefined, wb);
  b.close();
  const ob = await wb.outcome;
  assert.equal(ob.error?.code, "closed");
  assert.match(ob.error?.message ?? "", /the sink closed/);
  assert.equal(b.usable, false);
  assert.throws(() => b.publish("up.a", data, undefined, new Recorder("up.a")), /sink closed/);
  assert.ok(a.usable);
  await nc.close();
  const oa = await wa.outcome;
  assert.equal(oa.error?.code, "closed");
  assert.match(oa.error?.message ?? "", /connection closed/);
  assert.equal(a.usable, false);
});

Deno.test("a waiter that throws is logged and does not close the shared connection", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await setUp(server);
  try {
    const { lines, log } = logs();
    const tracker = new PubAckTracker(nc, 5000, undefined, log);
    class Throwing extends Recorder {
      override acked(): void {
        throw new Error("waiter bug");
      }
    }
    tracker.publish("up.a", data, undefined, new Throwing("up.a"));
    const next = new Recorder("up.a");
    tracker.publish("up.a", data, undefined, next);
    assert.deepEqual(await next.outcome, { acked: true, duplicate: false });
    assert.equal(nc.isClosed(), false);
    assert.ok(lines.some((l) => /PubAck handling failed.*waiter bug/.test(l)), lines.join("\n"));
    tracker.close();
  } finally {
    await nc.close();
  }
});

Deno.test("with permissions that allow replies only under an inbox prefix, the prefix is used", async () => {
  await using server = await NatsServer.start({
    jetstream: true,
    extraConfig: `authorization: { users: [
      { user: gw, password: secret, permissions: { publish: ">", subscribe: "_GW.>" } }
    ] }`,
  });
  const admin = await connect({
    servers: server.url,
    user: "gw",
    pass: "secret",
    inboxPrefix: "_GW",
  });
  await (await jetstreamManager(admin)).streams.add({
    name: "UP",
    subjects: ["up.>"],
  });
  await admin.close();
  const nc = await connect({ servers: server.url, user: "gw", pass: "secret", inboxPrefix: "_GW" });
  try {
    const denied = new PubAckTracker(nc, 5000, undefined, logs().log);
    const w1 = new Recorder("up.a");
    denied.publish("up.a", data, undefined, w1);
    const o1 = await w1.outcome;
    assert.equal(o1.error?.code, "closed");
    assert.match(o1.error?.message ?? "", /PubAck subscription failed: .*[Pp]ermissions/);
    assert.equal(denied.usable, false);
    const allowed = new PubAckTracker(nc, 5000, "_GW", logs().log);
    const w2 = new Recorder("up.a");
    allowed.publish("up.a", data, undefined, w2);
    assert.deepEqual(await w2.outcome, { acked: true, duplicate: false });
    allowed.close();
  } finally {
    await nc.close();
  }
});

Deno.test("a closed tracker's PubAck subscription is gone from the server", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const nc = await connect({ servers: server.url, name: "puback-close" });
  try {
    const tracker = new PubAckTracker(nc, 5000, "_PA", logs().log);
    await nc.flush();
    const inbox = (subs: string[] | undefined) => (subs ?? []).some((s) => s.startsWith("_PA."));
    await server.waitForConnection(
      (c) => c.name === "puback-close" && inbox(c.subscriptions_list),
      10_000,
      "the tracker's subscription on the server",
    );
    tracker.close();
    await nc.flush();
    await server.waitForConnection(
      (c) => c.name === "puback-close" && !inbox(c.subscriptions_list),
      10_000,
      "the tracker's subscription to be gone",
    );
    assert.equal(tracker.usable, false);
  } finally {
    await nc.close();
  }
});
