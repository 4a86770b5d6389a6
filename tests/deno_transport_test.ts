/**
 * The Deno-native NATS transport (`src/connectors/nats/deno_transport.ts`): back-pressure on
 * reads, the count of bytes queued for writing, and connections in plain text, with TLS and with
 * a client certificate against a real nats-server.
 */
import assert from "node:assert/strict";
import type { Server } from "@nats-io/nats-core/internal";
import { connect, DenoTransport } from "../src/connectors/nats/deno_transport.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { pollUntil } from "../dev/wait.ts";

const INFO = new TextEncoder().encode(
  'INFO {"server_id":"FAKE","version":"2.9.10","proto":1,"max_payload":1048576}\r\n',
);
const MiB = 1024 * 1024;

/** A one-connection fake server on a free loopback port: it sends INFO and hands over the socket. */
function fakeServer(): { port: number; accepted: Promise<Deno.TcpConn>; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept().then(async (conn) => {
    await conn.write(INFO);
    return conn;
  });
  return {
    port: listener.addr.port,
    accepted,
    close: () => listener.close(),
  };
}

function server(port: number): Server {
  return { hostname: "127.0.0.1", port, tlsName: "" } as Server;
}

Deno.test("the transport reads no further than its reader has consumed", async () => {
  const fake = fakeServer();
  const transport = new DenoTransport();
  await transport.connect(server(fake.port), {});
  const conn = await fake.accepted;
  const TOTAL = 64 * MiB;
  let written = 0;
  const writing = (async () => {
    const chunk = new Uint8Array(MiB).fill(0x2e);
    while (written < TOTAL) written += await conn.write(chunk.subarray(0, TOTAL - written));
  })();
  const reader = transport[Symbol.asyncIterator]();
  let read = (await reader.next()).value!.length - INFO.length;
  // The reader holds on to the first chunk: only the kernel's socket buffers fill up.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.ok(written < TOTAL / 2, `${written} bytes sent while nothing was read`);
  while (read < TOTAL) {
    const { value, done } = await reader.next();
    assert.ok(!done, `ended after ${read} bytes`);
    assert.ok(value.length <= 64 * 1024, `a chunk of ${value.length} bytes`);
    read += value.length;
  }
  await writing;
  assert.equal(read, TOTAL);
  await transport.close();
  assert.ok(transport.isClosed);
  conn.close();
  fake.close();
});

Deno.test("queuedBytes counts what the socket has not accepted yet", async () => {
  const fake = fakeServer();
  const transport = new DenoTransport();
  await transport.connect(server(fake.port), {});
  const conn = await fake.accepted;
  const TOTAL = 48 * MiB;
  for (let i = 0; i < TOTAL / MiB; i++) transport.send(new Uint8Array(MiB).fill(i));
  // The server reads nothing yet: beyond the kernel's buffers the data waits in the transport.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.ok(transport.queuedBytes > TOTAL / 2, `${transport.queuedBytes} bytes queued`);
  const buffer = new Uint8Array(MiB);
  let received = 0;
  let last = -1;
  while (received < TOTAL) {
    const n = await conn.read(buffer);
    assert.ok(n !== null, `ended after ${received} bytes`);
    last = buffer[n - 1]!;
    received += n;
  }
  assert.equal(last, TOTAL / MiB - 1, "frames arrive in order");
  await pollUntil(() => transport.queuedBytes === 0 || undefined, 5_000, "an empty write queue");
  await transport.close();
  conn.close();
  fake.close();
});

Deno.test("connect() publishes and subscribes through a real server", async () => {
  await using ns = await NatsServer.start();
  const nc = await connect({ servers: ns.url });
  const received: string[] = [];
  const done = Promise.withResolvers<void>();
  nc.subscribe("t.>", {
    callback: (_err, msg) => {
      received.push(msg.string());
      if (received.length === 1000) done.resolve();
    },
  });
  for (let i = 0; i < 1000; i++) nc.publish(`t.${i % 7}`, `${i}`);
  await done.promise;
  assert.deepEqual(received, Array.from({ length: 1000 }, (_, i) => `${i}`));
  const [connection] = (await ns.connz()).connections;
  assert.equal(connection?.["in_msgs"], 1000);
  await nc.drain();
});

Deno.test("a refused connection reports `connection refused`", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(
    connect({ servers: `127.0.0.1:${port}`, maxReconnectAttempts: 0 }),
    /connection refused/,
  );
});

async function hasOpenssl(): Promise<boolean> {
  try {
    return (await new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

async function openssl(cwd: string, args: string): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args: args.split(" "),
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `openssl ${args}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, in a temporary directory. */
async function certificates(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "sluice-tls-" });
  await Deno.writeTextFile(`${d}/server.cnf`, "subjectAltName=IP:127.0.0.1\n");
  await Deno.writeTextFile(`${d}/client.cnf`, "extendedKeyUsage=clientAuth\n");
  await openssl(
    d,
    "req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ca.key -out ca.pem -subj /CN=test-ca",
  );
  for (const who of ["server", "client"]) {
    await openssl(
      d,
      `req -newkey rsa:2048 -nodes -keyout ${who}.key -out ${who}.csr -subj /CN=${who}`,
    );
    await openssl(
      d,
      `x509 -req -in ${who}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 ` +
        `-extfile ${who}.cnf -out ${who}.pem`,
    );
  }
  return d;
}

Deno.test({
  name: "TLS verifies the server, and a client certificate is presented when the server asks",
  ignore: !(await hasOpenssl()),
  fn: async () => {
    const d = await certificates();
    try {
      const ca = await Deno.readTextFile(`${d}/ca.pem`);
      const tlsConfig = `cert_file: "${d}/server.pem", key_file: "${d}/server.key"`;
      {
        await using ns = await NatsServer.start({ extraConfig: `tls { ${tlsConfig} }` });
        const servers = `tls://127.0.0.1:${ns.port}`;
        const nc = await connect({ servers, tls: { ca } });
        await nc.flush();
        await nc.close();
        // Without the CA the server's certificate is refused.
        await assert.rejects(
          connect({ servers, tls: {}, maxReconnectAttempts: 0 }),
          /UnknownIssuer|certificate/i,
        );
      }
      await using ns = await NatsServer.start({
        extraConfig: `tls { ${tlsConfig}, ca_file: "${d}/ca.pem", verify: true }`,
      });
      const nc = await connect({
        servers: `tls://127.0.0.1:${ns.port}`,
        tls: {
          ca,
          cert: await Deno.readTextFile(`${d}/client.pem`),
          key: await Deno.readTextFile(`${d}/client.key`),
        },
      });
      const sub = nc.subscribe("t");
      nc.publish("t", "over mutual TLS");
      for await (const msg of sub) {
        assert.equal(msg.string(), "over mutual TLS");
        break;
      }
      await nc.close();
    } finally {
      await Deno.remove(d, { recursive: true });
    }
  },
});
