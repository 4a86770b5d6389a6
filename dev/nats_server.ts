/**
 * Launches a throw-away nats-server on free loopback ports, for the demo, every integration test
 * and the benchmarks. There is one launcher so that port selection, start-up checks and clean-up
 * are fixed in one place.
 *
 * Ports are chosen by the server itself (`listen: 127.0.0.1:-1`) and read back from the ports
 * file it writes, so two launches never race for a port. Start and stop timeouts are scaled by
 * `SLUICE_TEST_TIMEOUT_SCALE` (slow machines, emulation); the monitoring endpoints have typed
 * views for tests that look at the server's side.
 *
 * @example One server per test
 * ```ts ignore
 * Deno.test("pipeline forwards matches", async () => {
 *   await using server = await NatsServer.start();
 *   const connz = await server.connz();
 * });
 * ```
 *
 * @module
 */

import { readText } from "./streams.ts";
import { pollUntil, scaled } from "./wait.ts";

/** How long {@linkcode NatsServer.start} waits for the server to listen, in milliseconds. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;
/** How long {@linkcode NatsServer.stop} waits after SIGTERM before it sends SIGKILL. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
/** The command that is looked up on PATH when no executable is given. */
export const DEFAULT_EXECUTABLE = "nats-server";

const DEBIAN_EXECUTABLE = "/usr/sbin/nats-server";
// The server's log is kept for failure messages only; its tail is what matters.
const OUTPUT_LIMIT_CHARS = 256 * 1024;
// Neither the ports file nor the listening socket announce themselves: both are polled.
const POLL_INTERVAL_MS = 20;

/** Options of {@linkcode NatsServer.start}. */
export interface NatsServerOptions {
  /**
   * Enable JetStream, with its store in the server's temporary directory. The store survives
   * {@linkcode NatsServer.restart} and {@linkcode NatsServer.kill}.
   *
   * @default {false}
   */
  jetstream?: boolean;
  /**
   * Server configuration appended verbatim to the generated file, e.g. `"max_connections: 5"`.
   *
   * @default {""}
   */
  extraConfig?: string;
  /**
   * Client port to listen on. Leave it unset to let the server pick a free one.
   *
   * @default {-1}
   */
  port?: number;
  /**
   * Largest payload the server accepts, in bytes.
   *
   * @default {undefined} the server's own default (1 MiB)
   */
  maxPayload?: number;
  /**
   * The nats-server executable: a command looked up on PATH or a path.
   *
   * @default {"nats-server"} on PATH, else `/usr/sbin/nats-server` (Debian's place)
   */
  executable?: string;
  /**
   * How long to wait for the server to listen, in milliseconds.
   *
   * @default {10000} times `SLUICE_TEST_TIMEOUT_SCALE`
   */
  startTimeoutMs?: number;
  /**
   * How long to wait after SIGTERM before SIGKILL, in milliseconds.
   *
   * @default {5000} times `SLUICE_TEST_TIMEOUT_SCALE`
   */
  stopTimeoutMs?: number;
  /**
   * Directory in which the server's temporary directory is made.
   *
   * @default {undefined} the system's (`TMPDIR`, else `/tmp`)
   */
  tempRoot?: string;
  /**
   * Run the server in its own session, so that Ctrl-C in a terminal reaches only the parent,
   * which can then shut things down in order. A detached server outlives a parent that is
   * killed with SIGKILL.
   *
   * @default {false}
   */
  detached?: boolean;
}

/** The executable of nats-server cannot be found. */
export class NatsServerNotFoundError extends Error {
  /** Stable code: "nats_server_not_found". */
  readonly code = "nats_server_not_found";
  /** The executable that was looked for. */
  readonly executable: string;

  /**
   * @param executable The command or path that was not found.
   * @param options Standard error options, e.g. the `cause`.
   */
  constructor(executable: string, options?: ErrorOptions) {
    super(
      `Cannot find "${executable}" on PATH: install it: apt-get install nats-server`,
      options,
    );
    this.name = "NatsServerNotFoundError";
    this.executable = executable;
  }
}

/** nats-server was found but did not come up, or exited while starting. */
export class NatsServerStartError extends Error {
  /** Stable code: "nats_server_start". */
  readonly code = "nats_server_start";
  /** Everything the server printed before it was given up on. */
  readonly output: string;

  /**
   * @param reason What went wrong, one sentence.
   * @param output The server's output, appended to the message.
   * @param options Standard error options, e.g. the `cause`.
   */
  constructor(reason: string, output: string, options?: ErrorOptions) {
    super(`Cannot start nats-server: ${reason}\n--- nats-server output ---\n${output}`, options);
    this.name = "NatsServerStartError";
    this.output = output;
  }
}

/** One client connection in `/connz?subs=1`; only the fields the tests use. */
export interface ConnzConnection {
  cid: number;
  /** The name the client gave in CONNECT; absent when it gave none. */
  name?: string;
  ip: string;
  port: number;
  subscriptions: number;
  "in_msgs": number;
  "out_msgs": number;
  "pending_bytes": number;
  /** Subjects subscribed to; present because the request asks for `subs=1`. */
  "subscriptions_list"?: string[];
}

/** The response of `/connz?subs=1`. */
export interface ConnzResponse {
  "server_id": string;
  "num_connections": number;
  total: number;
  connections: ConnzConnection[];
}

/** The response of `/varz`; only the fields the tests use. */
export interface VarzResponse {
  "server_id": string;
  version: string;
  port: number;
  "max_payload": number;
  connections: number;
  "total_connections": number;
  "in_msgs": number;
  "out_msgs": number;
  "slow_consumers": number;
  jetstream?: { config?: { "store_dir"?: string } };
}

interface Running {
  child: Deno.ChildProcess;
  /** Set once the process has exited. */
  exitStatus: Deno.CommandStatus | undefined;
  exited: Promise<Deno.CommandStatus>;
  /** Resolves when stdout and stderr have been read to their end. */
  drained: Promise<void>;
}

/**
 * A nats-server child process listening on 127.0.0.1, with its configuration, ports file and
 * optional JetStream store in a temporary directory of its own.
 *
 * @example Start, use and stop a server
 * ```ts ignore
 * await using server = await NatsServer.start({ jetstream: true });
 * console.log(server.url); // nats://127.0.0.1:41234
 * ```
 */
export class NatsServer implements AsyncDisposable {
  readonly #options: NatsServerOptions;
  #dir: string | undefined;
  #running: Running | undefined;
  #port = 0;
  #monitorPort = 0;
  #output = "";

  /**
   * Prepares a server without launching it; use {@linkcode NatsServer.start}. Subclasses call
   * this and then {@linkcode NatsServer.launch}.
   *
   * @param options Launch options, kept for restarts.
   */
  protected constructor(options: NatsServerOptions) {
    this.#options = { ...options };
  }

  /**
   * Launches nats-server and resolves once it accepts TCP connections on its client port.
   *
   * @param options Launch options.
   * @returns The running server.
   * @throws {NatsServerNotFoundError} When the executable is not on PATH.
   * @throws {NatsServerStartError} When the server exits early or does not listen in time.
   */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options);
    await server.launch();
    return server;
  }

  /** The client port. */
  get port(): number {
    return this.#port;
  }

  /** The client URL, `nats://127.0.0.1:<port>`. */
  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  /** The monitoring URL, `http://127.0.0.1:<port>`; it changes on restart. */
  get monitorUrl(): string {
    return `http://127.0.0.1:${this.#monitorPort}`;
  }

  /** The process id of the current server process, or `undefined` when none runs. */
  get pid(): number | undefined {
    return this.#running?.child.pid;
  }

  /** Whether a server process is running. */
  get running(): boolean {
    return this.#running !== undefined && this.#running.exitStatus === undefined;
  }

  /** The JetStream store directory, when JetStream is enabled. */
  get storeDir(): string | undefined {
    return this.#options.jetstream && this.#dir ? `${this.#dir}/jetstream` : undefined;
  }

  /**
   * Everything the server printed so far (the last 256 KiB), across restarts.
   *
   * @returns The server's stdout and stderr, interleaved as they arrived.
   */
  output(): string {
    return this.#output;
  }

  /**
   * Launches the server process: writes the configuration, spawns the process, waits for the
   * ports file and probes the client port. Cleans up after itself when it fails.
   *
   * @throws {NatsServerNotFoundError} When the executable is not on PATH.
   * @throws {NatsServerStartError} When the server exits early or does not listen in time.
   */
  protected async launch(): Promise<void> {
    if (this.running) throw new Error("Cannot launch nats-server: it is already running");
    const freshDir = this.#dir === undefined;
    this.#dir ??= await Deno.makeTempDir({
      prefix: "sluice-nats-",
      ...(this.#options.tempRoot === undefined ? {} : { dir: this.#options.tempRoot }),
    });
    try {
      await this.#spawn(this.#dir);
    } catch (error) {
      if (freshDir) await this.#removeDir();
      throw error;
    }
  }

  /**
   * Stops the server process and starts a new one on the same client port with the same
   * configuration and JetStream store. A running server is stopped gracefully first; after
   * {@linkcode NatsServer.kill} this just starts it again. The object is reused, so an
   * `await using` declaration still covers the new process. The monitoring port may change.
   *
   * @returns This server, running again.
   * @throws {NatsServerStartError} When the new process does not come up.
   */
  async restart(): Promise<this> {
    await this.#terminate("SIGTERM");
    this.#appendOutput(`--- restarting on port ${this.#port} ---\n`);
    await this.launch();
    return this;
  }

  /**
   * Stops the server with SIGTERM, waits for it to exit (SIGKILL after the stop timeout), and
   * removes its temporary directory, JetStream store included. Safe to call more than once.
   */
  async stop(): Promise<void> {
    await this.#terminate("SIGTERM");
    await this.#removeDir();
  }

  /**
   * Kills the server with SIGKILL and waits for it to exit, as a crash would. The temporary
   * directory is kept so that {@linkcode NatsServer.restart} can bring the server back with its
   * store; {@linkcode NatsServer.stop} or disposal removes it.
   */
  async kill(): Promise<void> {
    await this.#terminate("SIGKILL");
  }

  /** Same as {@linkcode NatsServer.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Client connections with their subscriptions (`GET /connz?subs=1`).
   *
   * @returns The server's view of its connections.
   */
  connz(): Promise<ConnzResponse> {
    return this.#monitor<ConnzResponse>("/connz?subs=1");
  }

  /**
   * General server state (`GET /varz`).
   *
   * @returns Counters and configuration.
   */
  varz(): Promise<VarzResponse> {
    return this.#monitor<VarzResponse>("/varz");
  }

  /**
   * Polls `/connz` until a connection satisfies `predicate`, e.g. until Sluice's connection has
   * subscribed to a subject. The monitoring view has no event to wait on, hence the polling.
   *
   * @param predicate The test.
   * @param ms The bound on an ordinary machine, in milliseconds.
   * @param what What is waited for, for the error message.
   * @returns The first matching connection.
   * @throws {TimeoutError} When no connection matches in time.
   */
  waitForConnection(
    predicate: (connection: ConnzConnection) => boolean,
    ms: number,
    what: string,
  ): Promise<ConnzConnection> {
    return pollUntil(async () => (await this.connz()).connections.find(predicate), ms, what, 50);
  }

  async #monitor<T>(path: string): Promise<T> {
    const response = await fetch(`${this.monitorUrl}${path}`);
    if (!response.ok) {
      const body = await response.text();
      throw new Error(`Cannot read "${path}" from nats-server: HTTP ${response.status}: ${body}`);
    }
    return await response.json() as T;
  }

  #config(dir: string): string {
    // Keep the chosen port on restarts: clients reconnect to the URL they know.
    const port = this.#port || this.#options.port || -1;
    const lines = [
      "# Generated by Sluice's nats-server launcher.",
      `listen: 127.0.0.1:${port}`,
      "http: 127.0.0.1:-1",
      `ports_file_dir: ${JSON.stringify(dir)}`,
    ];
    if (this.#options.maxPayload !== undefined) {
      lines.push(`max_payload: ${this.#options.maxPayload}`);
    }
    if (this.#options.jetstream) {
      lines.push(`jetstream {`, `  store_dir: ${JSON.stringify(`${dir}/jetstream`)}`, `}`);
    }
    if (this.#options.extraConfig) lines.push(this.#options.extraConfig);
    return lines.join("\n") + "\n";
  }

  async #spawn(dir: string): Promise<void> {
    const configFile = `${dir}/nats-server.conf`;
    await Deno.writeTextFile(configFile, this.#config(dir));
    const executable = this.#options.executable ?? DEFAULT_EXECUTABLE;

    // Debian installs nats-server into /usr/sbin, which is not on every user's PATH.
    const candidates = this.#options.executable === undefined
      ? [executable, DEBIAN_EXECUTABLE]
      : [executable];
    let child: Deno.ChildProcess | undefined;
    let notFound: unknown;
    for (const candidate of candidates) {
      try {
        child = new Deno.Command(candidate, {
          args: ["-c", configFile],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          detached: this.#options.detached ?? false,
        }).spawn();
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        notFound = error;
      }
    }
    if (child === undefined) throw new NatsServerNotFoundError(executable, { cause: notFound });

    const pid = child.pid;
    const running: Running = {
      child,
      exitStatus: undefined,
      exited: child.status.then((status) => {
        running.exitStatus = status;
        return status;
      }),
      drained: Promise.all([
        readText(child.stdout, (text) => this.#appendOutput(text)),
        readText(child.stderr, (text) => this.#appendOutput(text)),
      ]).then(() => {}),
    };
    this.#running = running;

    const timeoutMs = this.#options.startTimeoutMs ?? scaled(DEFAULT_START_TIMEOUT_MS);
    const deadline = Date.now() + timeoutMs;
    try {
      const ports = await poll(
        () => readPortsFile(dir, pid),
        running,
        deadline,
        "the ports file",
      );
      const port = ports.clientPort;
      await poll(() => probeTcp(port), running, deadline, `a TCP connection to port ${port}`);
      this.#port = port;
      this.#monitorPort = ports.monitorPort;
    } catch (error) {
      await this.#terminate("SIGKILL");
      const reason = error instanceof Error ? error.message : String(error);
      throw new NatsServerStartError(reason, this.#output, { cause: error });
    }
  }

  async #terminate(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const running = this.#running;
    if (!running) return;
    if (running.exitStatus === undefined) {
      sendSignal(running.child, signal);
      if (signal === "SIGTERM") {
        const stopTimeoutMs = this.#options.stopTimeoutMs ?? scaled(DEFAULT_STOP_TIMEOUT_MS);
        if (!await settlesWithin(running.exited, stopTimeoutMs)) {
          sendSignal(running.child, "SIGKILL");
        }
      }
    }
    await running.exited;
    await running.drained;
    if (this.#running === running) this.#running = undefined;
  }

  async #removeDir(): Promise<void> {
    const dir = this.#dir;
    if (dir === undefined) return;
    this.#dir = undefined;
    await Deno.remove(dir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  #appendOutput(text: string): void {
    this.#output += text;
    if (this.#output.length > OUTPUT_LIMIT_CHARS) {
      this.#output = this.#output.slice(-OUTPUT_LIMIT_CHARS);
    }
  }
}

interface Ports {
  clientPort: number;
  monitorPort: number;
}

/** Reads `<exe>_<pid>.ports`; the name prefix is the server's argv[0], so match on the pid. */
async function readPortsFile(dir: string, pid: number): Promise<Ports | undefined> {
  const suffix = `_${pid}.ports`;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(suffix)) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`));
    } catch {
      return undefined; // Caught while being written: read it again on the next poll.
    }
    const clientPort = portOf(parsed, "nats");
    const monitorPort = portOf(parsed, "monitoring");
    if (clientPort === undefined || monitorPort === undefined) return undefined;
    return { clientPort, monitorPort };
  }
  return undefined;
}

function portOf(ports: unknown, key: string): number | undefined {
  if (typeof ports !== "object" || ports === null) return undefined;
  const urls: unknown = (ports as Record<string, unknown>)[key];
  if (!Array.isArray(urls) || typeof urls[0] !== "string") return undefined;
  const port = Number(new URL(urls[0]).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

async function probeTcp(port: number): Promise<true | undefined> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return undefined;
  }
}

/** Polls `probe` until it yields a value, the process exits, or the deadline passes. */
async function poll<T>(
  probe: () => Promise<T | undefined>,
  running: Running,
  deadline: number,
  what: string,
): Promise<T> {
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    const status = running.exitStatus;
    if (status !== undefined) {
      const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
      throw new Error(`it exited with ${how} before ${what} appeared`);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    await settlesWithin(running.exited, Math.min(POLL_INTERVAL_MS, left));
  }
}

/** Resolves `true` when `promise` settles within `ms`, `false` otherwise; never leaves a timer. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), elapsed]);
  } finally {
    clearTimeout(timer);
  }
}

function sendSignal(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch (error) {
    // The process exited between the check and the signal: nothing to stop.
    if (!(error instanceof TypeError)) throw error;
  }
}
