/**
 * Runs the real Sluice CLI as a child process and follows its log, so that integration tests
 * exercise what an operator runs: argument parsing, config loading, signals and exit codes.
 *
 * @example Run until started, then stop
 * ```ts ignore
 * await using sluice = SluiceProcess.start(["run", "--log-format", "json", dir], {
 *   env: { NATS_URL: server.url },
 * });
 * await sluice.waitForMsg("started");
 * sluice.signal("SIGTERM");
 * assertEquals((await sluice.status).code, 0);
 * ```
 *
 * @module
 */

import { TimeoutError, withTimeout } from "./wait.ts";
import { readText } from "./streams.ts";

/** The repository root, where `deno.json` is. */
export const REPO_ROOT: string = fileUrlToPath(new URL("..", import.meta.url));

/** The Sluice entry point that is run when no other is given. */
export const DEFAULT_ENTRY: string = `${REPO_ROOT}src/main.ts`;

/**
 * Environment variable naming another file to run when no entry is given, relative to the
 * repository root: `SLUICE_ENTRY=dist/sluice.js deno task test` runs the suite's Sluice processes
 * from the (minified) bundle, to check that it behaves as the source does.
 */
export const ENTRY_ENV = "SLUICE_ENTRY";

/**
 * The entry used when {@linkcode SluiceProcessOptions.entry} is not given.
 *
 * @returns {@linkcode ENTRY_ENV}'s file when set (and readable), else {@linkcode DEFAULT_ENTRY}.
 */
export function defaultEntry(): string {
  // The bench reads only its own variables: without the permission, the default.
  const allowed = Deno.permissions.querySync({ name: "env", variable: ENTRY_ENV }).state;
  const entry = allowed === "granted" ? Deno.env.get(ENTRY_ENV)?.trim() : undefined;
  return entry ? `${REPO_ROOT}${entry}` : DEFAULT_ENTRY;
}

/** Permissions given to Sluice when no other flags are given. */
export const DEFAULT_DENO_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
  "--allow-write",
];

/**
 * Environment variable with the command prefix that runs Deno for Sluice, split on whitespace,
 * e.g. `qemu-aarch64-static -L <sysroot> <aarch64 deno>` (set by `tests/aarch64/run.sh`).
 * Only Sluice runs on it; the test runner and nats-server stay on the host.
 */
export const RUNTIME_ENV = "SLUICE_DENO";

/**
 * The runtime used when {@linkcode SluiceProcessOptions.runtime} is not given.
 *
 * @returns The words of {@linkcode RUNTIME_ENV} when set, else `[Deno.execPath()]`.
 */
export function defaultRuntime(): string[] {
  const prefix = Deno.env.get(RUNTIME_ENV)?.trim();
  return prefix ? prefix.split(/\s+/) : [Deno.execPath()];
}

/** How long {@linkcode runSluice} waits for the command to exit, before scaling. */
export const DEFAULT_RUN_TIMEOUT_MS = 30_000;

/** How long {@linkcode SluiceProcess.waitForLog} waits by default, before scaling. */
export const DEFAULT_LOG_TIMEOUT_MS = 15_000;

// Lines kept for failure messages.
const TAIL_LINES = 80;

/** Log levels of Sluice. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** One line of `--log-format json` output. */
export interface LogRecord {
  time: string;
  level: LogLevel;
  msg: string;
  /** Further fields, e.g. `connector`, `pipeline`, `in`. */
  [field: string]: unknown;
}

/** One stderr line: a parsed JSON record, or text (a text-format log line, a Deno warning). */
export type LogLine = { kind: "record"; record: LogRecord; text: string } | {
  kind: "text";
  text: string;
};

/** How a process ended. */
export interface ExitStatus {
  /** The exit code; by convention 128 + the signal number when killed by a signal. */
  code: number;
  /** The signal that killed it, e.g. `"SIGKILL"`, or `null`. */
  signal: string | null;
}

/** Options of {@linkcode SluiceProcess.start} and {@linkcode runSluice}. */
export interface SluiceProcessOptions {
  /**
   * Working directory of the process.
   *
   * @default {REPO_ROOT}
   */
  cwd?: string | URL;
  /** Environment variables added to (or, with `clearEnv`, replacing) the inherited ones. */
  env?: Record<string, string>;
  /**
   * Start from an empty environment instead of the test's.
   *
   * @default {false}
   */
  clearEnv?: boolean;
  /**
   * Flags between `deno run` and the entry file.
   *
   * @default {DEFAULT_DENO_FLAGS}
   */
  denoFlags?: readonly string[];
  /**
   * The program to run: `src/main.ts`, or e.g. a bundled single file.
   *
   * @default {defaultEntry()}
   */
  entry?: string | URL;
  /**
   * Program and leading arguments that run Deno, e.g. an emulator and an aarch64 Deno binary:
   * `["qemu-aarch64-static", "-L", sysroot, denoArm64]`.
   *
   * @default {defaultRuntime()}
   */
  runtime?: readonly string[];
}

/**
 * A running Sluice process. Its stderr is read line by line and kept whole; JSON lines are
 * parsed into {@linkcode LogRecord}s. Declare it with `await using` so that it is killed and
 * reaped when the test ends.
 */
export class SluiceProcess implements AsyncDisposable {
  /** How the process ended; never rejects. */
  readonly status: Promise<ExitStatus>;
  /** The command line that was run, for messages. */
  readonly commandLine: readonly string[];
  readonly #child: Deno.ChildProcess;
  readonly #lines: LogLine[] = [];
  readonly #records: LogRecord[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #ended: Promise<void>;
  #stdout = "";
  #stderr = "";
  #exitStatus: ExitStatus | undefined;
  #hasEnded = false;

  private constructor(commandLine: readonly string[], options: SluiceProcessOptions) {
    this.commandLine = commandLine;
    const [program, ...args] = commandLine as [string, ...string[]];
    const spawnOptions: Deno.CommandOptions = {
      args,
      cwd: options.cwd === undefined ? REPO_ROOT : pathOf(options.cwd),
      env: { NO_COLOR: "1", ...options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    };
    if (options.clearEnv) spawnOptions.clearEnv = true;
    this.#child = new Deno.Command(program, spawnOptions).spawn();
    this.status = this.#child.status.then((s) => {
      this.#exitStatus = { code: s.code, signal: s.signal };
      return this.#exitStatus;
    });
    const stdoutRead = readText(this.#child.stdout, (text) => {
      this.#stdout += text;
    });
    const stderrRead = readLines(this.#child.stderr, (line) => this.#addLine(line), (text) => {
      this.#stderr += text;
    });
    this.#ended = Promise.all([this.status, stdoutRead, stderrRead]).then(() => {
      this.#hasEnded = true;
      this.#wake();
    });
  }

  /**
   * Spawns `deno run <flags> <entry> <args...>`.
   *
   * @param args Sluice's arguments, e.g. `["run", "--log-format", "json", "pipelines/"]`.
   * @param options Working directory, environment, flags, entry and runtime.
   * @returns The running process.
   */
  static start(args: readonly string[], options: SluiceProcessOptions = {}): SluiceProcess {
    const runtime = options.runtime ?? defaultRuntime();
    if (runtime.length === 0) throw new TypeError("Cannot start Sluice: the runtime is empty");
    const entry = options.entry === undefined ? defaultEntry() : pathOf(options.entry);
    const flags = options.denoFlags ?? DEFAULT_DENO_FLAGS;
    return new SluiceProcess([...runtime, "run", ...flags, entry, ...args], options);
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Every stderr line so far, in order. */
  get lines(): readonly LogLine[] {
    return this.#lines;
  }

  /** The parsed JSON log records so far, in order. */
  get records(): readonly LogRecord[] {
    return this.#records;
  }

  /**
   * Everything printed on stdout so far.
   *
   * @returns The text.
   */
  stdout(): string {
    return this.#stdout;
  }

  /**
   * Everything printed on stderr so far.
   *
   * @returns The text.
   */
  stderr(): string {
    return this.#stderr;
  }

  /**
   * Sends a signal, e.g. `"SIGTERM"`. Does nothing when the process has already exited.
   *
   * @param signal The signal.
   */
  signal(signal: Deno.Signal): void {
    if (this.#exitStatus !== undefined) return;
    try {
      this.#child.kill(signal);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // Exited in the meantime.
    }
  }

  /**
   * Resolves with the first record, past or future, that satisfies `predicate`.
   *
   * @param predicate The test.
   * @param ms The bound on an ordinary machine, in milliseconds (scaled).
   * @param what What is waited for, for the error message.
   * @returns The matching record.
   * @throws {Error} When the process ends or the time runs out first; the message includes the
   * command line and the end of stderr.
   */
  async waitForLog(
    predicate: (record: LogRecord) => boolean,
    ms: number = DEFAULT_LOG_TIMEOUT_MS,
    what = "a matching log record",
  ): Promise<LogRecord> {
    let seen = 0;
    let found: LogRecord | undefined;
    const check = (): boolean => {
      for (; seen < this.#records.length; seen++) {
        const record = this.#records[seen] as LogRecord;
        if (predicate(record)) {
          found = record;
          return true;
        }
      }
      return false;
    };
    if (check()) return found as LogRecord;
    if (this.#hasEnded) throw this.#endedError(what);

    const { promise, resolve, reject } = Promise.withResolvers<LogRecord>();
    const wake = () => {
      if (check()) resolve(found as LogRecord);
      else if (this.#hasEnded) reject(this.#endedError(what));
    };
    this.#waiters.add(wake);
    try {
      return await withTimeout(promise, ms, what);
    } catch (error) {
      if (error instanceof TimeoutError) {
        throw new TimeoutError(`${what}\n${this.#describe()}`, error.ms, ms);
      }
      throw error;
    } finally {
      this.#waiters.delete(wake);
    }
  }

  /**
   * Resolves with the first record whose `msg` is `msg`, e.g. `"started"`.
   *
   * @param msg The message.
   * @param ms The bound on an ordinary machine, in milliseconds (scaled).
   * @returns The matching record.
   * @throws {Error} When the process ends or the time runs out first.
   */
  waitForMsg(msg: string, ms: number = DEFAULT_LOG_TIMEOUT_MS): Promise<LogRecord> {
    return this.waitForLog((r) => r.msg === msg, ms, `Sluice to log "${msg}"`);
  }

  /**
   * Sends SIGTERM and waits for the exit.
   *
   * @param ms The bound on an ordinary machine, in milliseconds (scaled).
   * @returns How the process ended.
   * @throws {TimeoutError} When it does not exit in time.
   */
  async stop(ms: number = DEFAULT_LOG_TIMEOUT_MS): Promise<ExitStatus> {
    this.signal("SIGTERM");
    return await withTimeout(this.status, ms, `Sluice to exit after SIGTERM\n${this.#describe()}`);
  }

  /** Kills the process with SIGKILL if it still runs and waits until it and its pipes are done. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.signal("SIGKILL");
    await this.#ended;
  }

  #addLine(text: string): void {
    const record = parseRecord(text);
    if (record) {
      this.#records.push(record);
      this.#lines.push({ kind: "record", record, text });
    } else {
      this.#lines.push({ kind: "text", text });
    }
    this.#wake();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #endedError(what: string): Error {
    const status = this.#exitStatus;
    const how = status?.signal ? `signal ${status.signal}` : `code ${status?.code}`;
    return new Error(`Sluice exited with ${how} before ${what}\n${this.#describe()}`);
  }

  #describe(): string {
    const tail = this.#lines.slice(-TAIL_LINES).map((l) => l.text);
    const stdout = this.#stdout.trim();
    return [
      `--- command: ${this.commandLine.join(" ")}`,
      `--- stderr (last ${tail.length} lines) ---`,
      ...tail,
      ...(stdout ? ["--- stdout ---", stdout] : []),
    ].join("\n");
  }
}

/** Result of {@linkcode runSluice}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a one-shot Sluice command, e.g. `check`, to its end.
 *
 * @param args Sluice's arguments, e.g. `["check", "pipelines/"]`.
 * @param options Process options, plus `timeoutMs` (before scaling, default 30 s).
 * @returns Exit code, stdout and stderr.
 * @throws {TimeoutError} When the command does not exit in time (it is killed).
 *
 * @example Check a configuration
 * ```ts ignore
 * const { code, stderr } = await runSluice(["check", "bad.yaml"]);
 * assertEquals(code, 2);
 * ```
 */
export async function runSluice(
  args: readonly string[],
  options: SluiceProcessOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  await using sluice = SluiceProcess.start(args, options);
  const status = await withTimeout(
    sluice.status,
    options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS,
    `"sluice ${args.join(" ")}" to exit`,
  );
  await sluice[Symbol.asyncDispose](); // Reads the pipes to their end.
  return { code: status.code, stdout: sluice.stdout(), stderr: sluice.stderr() };
}

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith("{")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const candidate = value as Record<string, unknown>;
  if (typeof candidate.msg !== "string" || typeof candidate.level !== "string") return undefined;
  return candidate as LogRecord;
}

function pathOf(location: string | URL): string {
  return location instanceof URL ? fileUrlToPath(location) : location;
}

function fileUrlToPath(url: URL): string {
  if (url.protocol !== "file:") throw new TypeError(`Cannot use "${url.href}": not a file URL`);
  return decodeURIComponent(url.pathname);
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  onText: (text: string) => void,
): Promise<void> {
  let pending = "";
  await readText(stream, (text) => {
    onText(text);
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      onLine(pending.slice(0, newline).replace(/\r$/, ""));
      pending = pending.slice(newline + 1);
    }
  });
  if (pending) onLine(pending);
}
