/**
 * A real mosquitto broker per test, on a free loopback port, with its configuration, persistence
 * file and certificates in a temporary directory of its own. Modelled on the nats-server launcher:
 * always declare it with `await using` so the process and its directory are gone after the test.
 *
 * mosquitto needs a concrete port, so one is picked by binding port 0 and closing it; a start that
 * loses the race for it ("Address already in use") is retried on another port.
 *
 * @example One broker per test
 * ```ts ignore
 * await using broker = await Mosquitto.start({ persistence: true });
 * console.log(broker.url); // mqtt://127.0.0.1:41234
 * await broker.restart(); // same port, same persistence file
 * ```
 *
 * @module
 */

import { readText } from "./streams.ts";
import { scaled } from "./wait.ts";

const EXECUTABLE = "mosquitto";
const DEBIAN_EXECUTABLE = "/usr/sbin/mosquitto";
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_LIMIT_CHARS = 256 * 1024;
const POLL_INTERVAL_MS = 20;
const START_ATTEMPTS = 5;

/** TLS listener files (PEM). */
export interface MosquittoTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Ask connecting clients for a certificate signed by `caFile`. */
  requireCertificate?: boolean;
}

/** Options of {@linkcode Mosquitto.start}. */
export interface MosquittoOptions {
  /**
   * Keep sessions, subscriptions and queued messages in a file that survives
   * {@linkcode Mosquitto.restart} (written on a graceful stop).
   *
   * @default {false}
   */
  persistence?: boolean;
  /** Users and passwords; when given, anonymous clients are refused. */
  users?: Record<string, string>;
  /** Add a TLS listener (see {@linkcode Mosquitto.tlsUrl}). */
  tls?: MosquittoTls;
  /** Configuration lines appended verbatim. */
  extraConfig?: string;
}

/** mosquitto was not found, or did not come up. */
export class MosquittoStartError extends Error {
  /** Stable code: "mosquitto_start". */
  readonly code = "mosquitto_start";
  constructor(reason: string, output: string, options?: ErrorOptions) {
    super(`Cannot start mosquitto: ${reason}\n--- mosquitto output ---\n${output}`, options);
    this.name = "MosquittoStartError";
  }
}

/** A mosquitto child process listening on 127.0.0.1. */
export class Mosquitto implements AsyncDisposable {
  readonly #options: MosquittoOptions;
  readonly #dir: string;
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<Deno.CommandStatus> | undefined;
  #drained: Promise<void> | undefined;
  #port = 0;
  #tlsPort = 0;
  #output = "";

  private constructor(options: MosquittoOptions, dir: string) {
    this.#options = options;
    this.#dir = dir;
  }

  /**
   * Launches mosquitto and resolves once it accepts TCP connections.
   *
   * @throws {MosquittoStartError} When it cannot be started.
   */
  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = await Deno.makeTempDir({ prefix: "sluice-mosquitto-" });
    const broker = new Mosquitto(options, dir);
    try {
      if (options.users) await broker.#writePasswords(options.users);
      await broker.#launchOnFreePorts();
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    return broker;
  }

  /** `mqtt://127.0.0.1:<port>`; the port stays the same over restarts. */
  get url(): string {
    return `mqtt://127.0.0.1:${this.#port}`;
  }

  /** The plain-TCP port. */
  get port(): number {
    return this.#port;
  }

  /** `mqtts://localhost:<port>` of the TLS listener (the certificate names `localhost`). */
  get tlsUrl(): string {
    if (!this.#options.tls) throw new Error("This broker was started without tls");
    return `mqtts://localhost:${this.#tlsPort}`;
  }

  /** The broker's temporary directory (configuration, persistence). */
  get dir(): string {
    return this.#dir;
  }

  /** Everything the broker printed (the tail, when long). */
  get output(): string {
    return this.#output;
  }

  /** Stops the broker gracefully (it saves its persistence file) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, scaled(STOP_TIMEOUT_MS));
    try {
      await this.#exited;
      await this.#drained;
    } finally {
      clearTimeout(timer);
      this.#child = undefined;
    }
  }

  /** Kills the broker with SIGKILL: nothing is saved. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#exited;
    await this.#drained;
    this.#child = undefined;
  }

  /** Stops (gracefully) and starts the broker again on the same ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  /** Starts the broker again after {@linkcode stop} or {@linkcode kill}, on the same ports. */
  async resume(): Promise<void> {
    if (this.#child) return;
    await this.#launch();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill().catch(() => {});
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  async #launchOnFreePorts(): Promise<void> {
    for (let attempt = 1;; attempt++) {
      this.#port = freePort();
      if (this.#options.tls) this.#tlsPort = freePort();
      try {
        await this.#launch();
        return;
      } catch (e) {
        const race = e instanceof MosquittoStartError && /in use/i.test(this.#output);
        if (!race || attempt >= START_ATTEMPTS) throw e;
      }
    }
  }

  async #writePasswords(users: Record<string, string>): Promise<void> {
    const file = `${this.#dir}/passwords`;
    await Deno.writeTextFile(file, "");
    for (const [user, password] of Object.entries(users)) {
      const out = await new Deno.Command("mosquitto_passwd", {
        args: ["-b", file, user, password],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new MosquittoStartError(
          "mosquitto_passwd failed",
          new TextDecoder().decode(out.stderr),
        );
      }
    }
  }

  #config(): string {
    const o = this.#options;
    const lines = [
      // Global options first: mosquitto applies per_listener_settings false to all listeners.
      `persistence ${o.persistence ? "true" : "false"}`,
      `persistence_location ${this.#dir}/`,
      "log_dest stdout",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      "connection_messages true",
      o.users ? `password_file ${this.#dir}/passwords` : "",
      `allow_anonymous ${o.users ? "false" : "true"}`,
      // As root, mosquitto would switch to a "mosquitto" user that cannot read the temp dir.
      isRoot() ? "user root" : "",
      `listener ${this.#port} 127.0.0.1`,
    ];
    if (o.tls) {
      lines.push(
        `listener ${this.#tlsPort} 127.0.0.1`,
        `cafile ${o.tls.caFile}`,
        `certfile ${o.tls.certFile}`,
        `keyfile ${o.tls.keyFile}`,
        `require_certificate ${o.tls.requireCertificate ? "true" : "false"}`,
      );
    }
    if (o.extraConfig) lines.push(o.extraConfig);
    return lines.filter((l) => l !== "").join("\n") + "\n";
  }

  async #launch(): Promise<void> {
    const file = `${this.#dir}/mosquitto.conf`;
    await Deno.writeTextFile(file, this.#config());
    this.#output = "";
    let child: Deno.ChildProcess;
    const spawn = (cmd: string) =>
      new Deno.Command(cmd, {
        args: ["-c", file],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    try {
      child = spawn(EXECUTABLE);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      try {
        child = spawn(DEBIAN_EXECUTABLE);
      } catch (e2) {
        throw new MosquittoStartError(
          `"${EXECUTABLE}" is not on PATH: apt-get install mosquitto`,
          "",
          { cause: e2 },
        );
      }
    }
    let exited = false;
    this.#child = child;
    this.#exited = child.status.then((s) => {
      exited = true;
      return s;
    });
    const append = (text: string) => {
      this.#output = (this.#output + text).slice(-OUTPUT_LIMIT_CHARS);
    };
    this.#drained = Promise.all([readText(child.stdout, append), readText(child.stderr, append)])
      .then(() => {});
    const deadline = Date.now() + scaled(START_TIMEOUT_MS);
    const ports = this.#options.tls ? [this.#port, this.#tlsPort] : [this.#port];
    for (const port of ports) {
      while (true) {
        if (exited) {
          await this.#drained;
          this.#child = undefined;
          throw new MosquittoStartError("it exited while starting", this.#output);
        }
        if (await accepts(port)) break;
        if (Date.now() > deadline) {
          await this.kill();
          throw new MosquittoStartError(`port ${port} is not listening`, this.#output);
        }
        await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
      }
    }
  }
}

/** Whether this process runs as root; without `--allow-sys=uid`, read from /proc instead. */
function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    try {
      return /^Uid:\s+0\s/m.test(Deno.readTextFileSync("/proc/self/status"));
    } catch {
      return false;
    }
  }
}

/** A port that was free a moment ago (bound to port 0 and closed). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function accepts(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
