/*
 * Adapted from nats.js `transport-deno/src/deno_transport.ts` and `transport-deno/src/connect.ts`
 * (https://github.com/nats-io/nats.js), Copyright 2020-2024 The NATS Authors, licensed under the
 * Apache License, Version 2.0 (the "License"); you may not use this file except in compliance with
 * the License. You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software distributed under the
 * License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either
 * express or implied. See the License for the specific language governing permissions and
 * limitations under the License.
 *
 * Changed for Sluice: written against nats-core 3.4's `internal` entry point; reads into one
 * reused buffer and hands the protocol a right-sized copy, only after it has parsed the previous
 * one (back-pressure); coalesces queued writes and counts the bytes not yet accepted by the
 * socket; CA certificates as PEM text, the server always verified, `handshakeFirst` on
 * `Deno.connectTls`; a connection with a client certificate handed to the Node transport; host
 * names resolved with the system resolver (`node:dns`), so that permissions name the host and
 * address as before; close semantics of the Node transport (a failed connection attempt never
 * reports a disconnect).
 */

/**
 * A NATS transport on Deno's own sockets (`Deno.connect`, `Deno.startTls`, `Deno.connectTls`)
 * for nats-core, instead of `@nats-io/transport-node` over Deno's Node compatibility layer.
 *
 * It reads the socket only as fast as the client parses: the next chunk is read once the
 * protocol handler has consumed the previous one (a callback subscription handles each message
 * synchronously within it), so a flood waits in the kernel and the server instead of growing
 * this process.
 *
 * A connection with a client certificate is the exception: Deno's TLS cannot present one when
 * upgrading a connection, so such a connection is made by `@nats-io/transport-node`'s transport
 * (which reads without back-pressure) behind the same interface.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import {
  checkOptions,
  type ConnectionOptions,
  DataBuffer,
  type Deferred,
  deferred,
  errors,
  extractProtocolMessage,
  hasWsProtocol,
  INFO,
  type NatsConnection,
  NatsConnectionImpl,
  type Server,
  type ServerInfo,
  setTransportFactory,
  type Transport,
} from "@nats-io/nats-core/internal";

/** Reported to the server in CONNECT; the nats-core release this transport is written for. */
const VERSION = "3.4.0";
const LANG = "nats.deno";

/**
 * Size of the reused read buffer. Each read hands the protocol a copy of what arrived (at most
 * this much), so a message that outlives its chunk keeps only that chunk alive.
 */
const READ_BUFFER_SIZE = 64 * 1024;

/** Most bytes of queued frames joined into one write. */
const MAX_WRITE = 256 * 1024;

/** How long a disconnect waits for queued writes before it closes the socket anyway. */
const FLUSH_ON_DISCONNECT_MS = 2000;

type Conn = Deno.TcpConn | Deno.TlsConn;

/**
 * nats-core's options plus a callback for each failed connection attempt, initial or reconnect,
 * with its reason (e.g. "connection refused"). nats-core copies unknown options along.
 */
export interface DialOptions extends ConnectionOptions {
  onDialError?: (error: unknown) => void;
}

/** A nats-core {@link Transport} on Deno's own TCP and TLS sockets. */
export class DenoTransport implements Transport {
  readonly version: string = VERSION;
  readonly lang: string = LANG;
  #closeError: Error | undefined;
  /** The Node transport, for the one case Deno's TLS cannot serve (see {@link connect}). */
  #node: Transport | undefined;
  #conn: Conn | undefined;
  #encrypted = false;
  #connected = false;
  #done = false;
  readonly #closed: Deferred<void | Error> = deferred();
  readonly #readBuffer = new Uint8Array(READ_BUFFER_SIZE);
  /** What was read with the server's INFO, handed to the protocol first. */
  #initial: Uint8Array | undefined;
  #frames: Uint8Array[] = [];
  #queued = 0;
  #writing: Promise<void> | undefined;

  get isClosed(): boolean {
    return this.#node ? this.#node.isClosed : this.#done;
  }

  get closeError(): Error | undefined {
    return this.#node ? this.#node.closeError : this.#closeError;
  }

  /**
   * Bytes handed to {@link send} that the socket has not accepted yet: the transport's share of
   * what a slow or stalled link keeps in this process.
   */
  get queuedBytes(): number {
    if (!this.#node) return this.#queued;
    const length = (this.#node as { socket?: { writableLength?: unknown } }).socket?.writableLength;
    return typeof length === "number" ? length : 0;
  }

  async connect(hp: Server, options: DialOptions): Promise<void> {
    try {
      return await this.#connect(hp, options);
    } catch (err) {
      // nats-core keeps the reason a reconnect attempt failed to itself; its owner wants it.
      options.onDialError?.(err);
      throw err;
    }
  }

  async #connect(hp: Server, options: ConnectionOptions): Promise<void> {
    const tls = options.tls;
    const handshakeFirst = tls?.handshakeFirst === true;
    if (tls?.cert || tls?.certFile) {
      // Deno.startTls cannot present a client certificate (denoland/deno#21496), and
      // Deno.connectTls (handshake first) aborts the process on a certificate its TLS library
      // refuses (an X.509 v1 certificate, a key that does not match): a connection with a client
      // certificate goes through the Node transport.
      // Loaded only here: Node's net and tls stay out of a gateway that has no client certificate.
      const { NodeTransport } = await import("./node_transport.ts");
      // Closed while the module loaded (only the first such connection waits for it): no dial.
      if (this.#done) throw new Error("the connection was closed while it was being made");
      const node: Transport = new NodeTransport();
      this.#node = node;
      void node.closed().then((err) => this.#closed.resolve(err));
      // The certificate is checked for the name the address was resolved from, else for the
      // address dialled: without a name Deno's Node TLS would check it for "localhost".
      const nodeTls = { ...tls, host: hp.tlsName || hp.hostname };
      return await node.connect(hp, { ...options, tls: nodeTls });
    }
    // A server found by resolving a name is verified by that name.
    const tlsName = hp.tlsName || hp.hostname;
    try {
      if (handshakeFirst) {
        this.#conn = await Deno.connectTls({
          hostname: tlsName,
          port: hp.port,
          ...await tlsOptions(options),
        });
        await this.#conn.handshake();
        this.#encrypted = true;
      } else {
        this.#conn = await Deno.connect({ hostname: hp.hostname, port: hp.port });
        this.#conn.setNoDelay(true);
      }
      if (this.#done) throw new errors.ConnectionError("closed while connecting");
      const info = await this.#peekInfo();
      checkOptions(info, options);
      const { tls_required: tlsRequired, tls_available: tlsAvailable } = info;
      const desired = tlsAvailable === true && options.tls !== null;
      if (!handshakeFirst && (tlsRequired || desired)) {
        this.#conn = await Deno.startTls(this.#conn as Deno.TcpConn, {
          hostname: tlsName,
          ...await tlsOptions(options),
        });
        // The handshake (and so a server certificate we refuse) happens here, not on the first
        // read or write.
        await this.#conn.handshake();
        this.#encrypted = true;
      }
      if (this.#done) throw new errors.ConnectionError("closed while connecting");
      if (tlsRequired && !this.#encrypted) {
        throw errors.InvalidArgumentError.format("tls", "is not available on this server");
      }
      this.#connected = true;
    } catch (err) {
      this.#closeConn();
      throw err instanceof Deno.errors.ConnectionRefused
        ? new errors.ConnectionError("connection refused", { cause: err })
        : err;
    }
  }

  /** Reads until the server's INFO line is complete; keeps what was read for the protocol. */
  async #peekInfo(): Promise<ServerInfo> {
    const conn = this.#conn!;
    const inbound = new DataBuffer();
    let line = "";
    while (line === "") {
      const n = await conn.read(this.#readBuffer);
      if (n === null) throw new errors.ConnectionError("socket closed while expecting INFO");
      inbound.fill(this.#readBuffer.slice(0, n));
      line = extractProtocolMessage(inbound.peek());
    }
    this.#initial = inbound.drain();
    const m = INFO.exec(line);
    if (!m?.[1]) throw new errors.ConnectionError("unexpected response from server");
    return JSON.parse(m[1]) as ServerInfo;
  }

  /**
   * The bytes read from the server, chunk by chunk. The next read starts only when the consumer
   * asks for the next chunk, that is once it has parsed this one.
   */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    if (this.#node) return yield* this.#node;
    const initial = this.#initial;
    this.#initial = undefined;
    if (initial?.length) yield initial;
    let reason: Error | undefined;
    const buffer = this.#readBuffer;
    try {
      while (!this.#done) {
        const conn = this.#conn;
        if (!conn) break;
        let n: number | null;
        try {
          n = await conn.read(buffer);
        } catch (err) {
          reason = err instanceof Error ? err : new Error(String(err));
          break;
        }
        if (n === null) break;
        if (n > 0) yield buffer.slice(0, n);
      }
    } finally {
      // The server or the network ended the connection, or the reader stopped reading: either
      // way it is over (when we closed it, this does nothing).
      void this.#close(reason, false);
    }
  }

  isEncrypted(): boolean {
    return this.#node ? this.#node.isEncrypted() : this.#encrypted;
  }

  send(frame: Uint8Array): void {
    if (this.#node) return this.#node.send(frame);
    // Frames sent once closed are dropped, as by the Node transport: the client fails over.
    if (this.#done || !this.#conn || frame.length === 0) return;
    this.#frames.push(frame);
    this.#queued += frame.length;
    this.#writing ??= this.#writeQueued();
  }

  async #writeQueued(): Promise<void> {
    try {
      while (this.#frames.length > 0) {
        const conn = this.#conn;
        if (!conn) break;
        const chunk = this.#nextChunk();
        for (let offset = 0; offset < chunk.length;) {
          const n = await conn.write(offset === 0 ? chunk : chunk.subarray(offset));
          offset += n;
          this.#queued -= n;
        }
      }
    } catch {
      // Write errors are left to the reader, which sees the connection fail, or to the
      // heartbeats, which see it go stale; what was queued is lost with the connection.
      this.#frames = [];
      this.#queued = 0;
    } finally {
      this.#writing = undefined;
    }
  }

  /** The queued frames, joined up to {@link MAX_WRITE} bytes. */
  #nextChunk(): Uint8Array {
    const frames = this.#frames;
    let count = 1;
    let size = frames[0]!.length;
    while (count < frames.length && size + frames[count]!.length <= MAX_WRITE) {
      size += frames[count]!.length;
      count++;
    }
    if (count === 1) return frames.shift()!;
    const chunk = new Uint8Array(size);
    let at = 0;
    for (const f of frames.splice(0, count)) {
      chunk.set(f, at);
      at += f.length;
    }
    return chunk;
  }

  close(err?: Error): Promise<void> {
    return this.#node ? this.#node.close(err) : this.#close(err, false);
  }

  disconnect(): void {
    if (this.#node) return this.#node.disconnect();
    void this.#close(undefined, true);
  }

  /** Closes the socket. An internal close (a disconnect) first lets queued writes finish. */
  async #close(err: Error | undefined, internal: boolean): Promise<void> {
    if (this.#done) return;
    if (!this.#connected) {
      // An attempt given up on (e.g. timed out): stop it; it reports nothing, as connect() fails.
      this.#done = true;
      this.#closeConn();
      return;
    }
    this.#done = true;
    this.#closeError = err;
    if (!err && internal && this.#writing) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#writing,
        new Promise<void>((resolve) => timer = setTimeout(resolve, FLUSH_ON_DISCONNECT_MS)),
      ]);
      clearTimeout(timer);
    }
    this.#closeConn();
    this.#dropQueued();
    this.#closed.resolve(err);
  }

  #closeConn(): void {
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
  }

  closed(): Promise<void | Error> {
    return this.#closed;
  }

  /** Drops a transport the client replaces (before a reconnect), without notifications. */
  discard(): void {
    if (this.#node) return this.#node.discard();
    this.#done = true;
    this.#closeConn();
    this.#dropQueued();
  }

  /** Forgets the frames not yet written; a write in progress accounts for its own bytes. */
  #dropQueued(): void {
    for (const f of this.#frames) this.#queued -= f.length;
    this.#frames = [];
  }
}

/** The CA certificates (PEM text) of nats-core's TLS options, for Deno's TLS. */
async function tlsOptions(options: ConnectionOptions): Promise<{ caCerts?: string[] }> {
  const tls = options.tls ?? {};
  const ca = tls.caFile ? await Deno.readTextFile(tls.caFile) : tls.ca;
  return ca !== undefined ? { caCerts: [ca] } : {};
}

/**
 * The addresses of a host name, from the system resolver (hosts file included). Under Deno,
 * looking up a name needs `--allow-net` for the name, and connecting to an address it resolved
 * to needs the address and port.
 */
async function resolveHost(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true });
  return found.length > 0 ? found.map((a) => a.address) : [host];
}

/**
 * Connects with nats-core on Deno's own sockets (the counterpart of `connect` in
 * `@nats-io/transport-node`).
 */
export function connect(options: DialOptions = {}): Promise<NatsConnection> {
  if (hasWsProtocol(options)) {
    return Promise.reject(
      errors.InvalidArgumentError.format("servers", "websockets are not supported"),
    );
  }
  setTransportFactory({ factory: (): Transport => new DenoTransport(), dnsResolveFn: resolveHost });
  return NatsConnectionImpl.connect(options);
}
