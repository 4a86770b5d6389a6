/**
 * A durable, size-bounded FIFO of events on disk: the store behind a sink's `buffer:`. It is one
 * SQLite database (`node:sqlite`) in WAL mode with `synchronous=FULL`, so an append that has
 * resolved survives a process crash and a power cut. Appends are group-committed: every append
 * made in one turn of the event loop shares one transaction and one fsync.
 *
 * Only the sink that owns an outbox reads and deletes from it; the database is opened with an
 * exclusive lock so that a second process (or a second sink naming the same path) fails clearly.
 * `node:sqlite` is imported by the first {@linkcode Outbox.open}: a gateway without `buffer:` does
 * not load it (docs/performance.md, "Memory").
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { RuntimeError } from "../errors.ts";

/** What a full outbox does with one more event. */
export type OverflowPolicy = "drop_oldest" | "drop_newest" | "block";

/** Options of {@link Outbox.open}. */
export interface OutboxOptions {
  /** Path of the database file; its directory is created when missing. */
  path: string;
  /** Most bytes of stored events (payload, subject and headers). */
  maxBytes: number;
  /** What an append does when the outbox is full. */
  overflow: OverflowPolicy;
  /**
   * Most appends that may wait for room under `overflow: block`; further ones are refused so that
   * memory stays bounded when the source cannot be slowed down.
   * @default 10000
   */
  maxBlocked?: number;
  /** Told how many stored events `drop_oldest` discarded to make room. */
  onDrop?: (events: number) => void;
}

/** One event as stored: enough to send it again through the sink. */
export interface OutboxRecord {
  /** Subject the event arrived on (templates and `_tokens` are rendered from it again). */
  subject: string;
  /** The payload, unchanged. */
  data: Uint8Array;
  /** Source headers as name and values, when the message had any. */
  headers: [string, string[]][] | undefined;
  /** Annotations added by the engine (dead-letter headers). */
  extra: Record<string, string> | undefined;
  /** Whether the payload is a decoded JSON event (false for dead letters of malformed input). */
  hasEvent: boolean;
}

/** A stored record with its position in the queue. */
export interface StoredRecord extends OutboxRecord {
  /** Position in the queue; increases with every append, across restarts. */
  seq: number;
}

/** How an append ended: durable on disk, refused because the outbox is full, or an I/O failure. */
export type AppendOutcome = "stored" | "full" | "failed";

/** Appends committed together at most; more are committed in the next transaction. */
const MAX_GROUP = 2048;
/** Default of {@link OutboxOptions.maxBlocked}. */
const DEFAULT_MAX_BLOCKED = 10_000;

interface Pending {
  record: OutboxRecord;
  headersJson: string | null;
  size: number;
  resolve: (outcome: AppendOutcome) => void;
}

/** A durable on-disk queue of events for one sink. */
export class Outbox {
  /** Path of the database file. */
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #maxBytes: number;
  readonly #overflow: OverflowPolicy;
  readonly #maxBlocked: number;
  readonly #onDrop: (events: number) => void;
  readonly #insert: StatementSync;
  readonly #head: StatementSync;
  readonly #sumUpTo: StatementSync;
  readonly #deleteUpTo: StatementSync;
  readonly #oldest: StatementSync;
  #stored = 0;
  #storedBytes = 0;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #blocked: Pending[] = [];
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  #committed: PromiseWithResolvers<void> | undefined;
  #dropped = 0;
  #closed = false;

  private constructor(options: OutboxOptions, db: DatabaseSync) {
    this.path = options.path;
    this.#db = db;
    this.#maxBytes = options.maxBytes;
    this.#overflow = options.overflow;
    this.#maxBlocked = options.maxBlocked ?? DEFAULT_MAX_BLOCKED;
    this.#onDrop = options.onDrop ?? (() => {});
    this.#insert = db.prepare(
      "INSERT INTO events (subject, data, headers, extra, has_event, size) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#head = db.prepare(
      "SELECT seq, subject, data, headers, extra, has_event FROM events ORDER BY seq LIMIT ?",
    );
    this.#sumUpTo = db.prepare(
      "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM events WHERE seq <= ?",
    );
    this.#deleteUpTo = db.prepare("DELETE FROM events WHERE seq <= ?");
    this.#oldest = db.prepare("SELECT seq, size FROM events ORDER BY seq LIMIT 4096");
    const totals = db.prepare("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM events")
      .get() as { n: number; bytes: number };
    this.#stored = Number(totals.n);
    this.#storedBytes = Number(totals.bytes);
  }

  /**
   * Opens (or creates) the outbox at `options.path` and takes an exclusive lock on it. Events left
   * by an earlier run are kept and come first.
   *
   * @param options Path, size bound and overflow policy.
   * @returns The open outbox.
   * @throws {RuntimeError} When the file cannot be opened, is not an outbox, or is in use.
   *
   * @example Open, append, read back
   * ```ts ignore
   * const outbox = await Outbox.open({ path: "/var/lib/sluice/uplink.db", maxBytes: 64 << 20, overflow: "drop_oldest" });
   * await outbox.append({ subject: "a", data: new Uint8Array([123, 125]), headers: undefined, extra: undefined, hasEvent: true });
   * outbox.head(10); // [{ seq: 1, subject: "a", ... }]
   * ```
   */
  static async open(options: OutboxOptions): Promise<Outbox> {
    const { DatabaseSync } = await import("node:sqlite");
    const dir = options.path.includes("/")
      ? options.path.slice(0, options.path.lastIndexOf("/"))
      : "";
    let db: DatabaseSync | undefined;
    try {
      if (dir && !isDirectory(dir)) Deno.mkdirSync(dir, { recursive: true });
      db = new DatabaseSync(options.path);
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      // Taking a write lock now makes a second user of the file fail here, not on the first event.
      db.exec("BEGIN IMMEDIATE");
      db.exec(
        `CREATE TABLE IF NOT EXISTS events (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          subject TEXT NOT NULL,
          data BLOB NOT NULL,
          headers TEXT,
          extra TEXT,
          has_event INTEGER NOT NULL,
          size INTEGER NOT NULL
        )`,
      );
      db.exec("COMMIT");
      return new Outbox(options, db);
    } catch (e) {
      try {
        db?.close();
      } catch { /* already unusable */ }
      const text = e instanceof Error ? e.message : String(e);
      const hint = /locked|busy/i.test(text)
        ? ": another Sluice process (or another sink) uses this outbox"
        : e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
        ? ` (grant --allow-read and --allow-write for ${dir || options.path})`
        : "";
      throw new RuntimeError(
        "outbox",
        `Cannot open outbox "${options.path}": ${text}${hint}`,
        { cause: e },
      );
    }
  }

  /** Events stored or being stored. */
  get length(): number {
    return this.#stored + this.#pending.length + this.#blocked.length;
  }

  /** Bytes of stored events and of those being stored. */
  get bytes(): number {
    return this.#storedBytes + this.#pendingBytes;
  }

  /** Stored events discarded by `drop_oldest` since the outbox was opened. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Appends an event. Resolves once it is durable (`"stored"`), when the outbox is full and the
   * policy refuses it (`"full"`), or when the disk failed (`"failed"`). Never rejects.
   *
   * @param record The event.
   * @returns How the append ended.
   */
  append(record: OutboxRecord): Promise<AppendOutcome> {
    if (this.#closed) return Promise.resolve("failed");
    const headersJson = record.headers ? JSON.stringify(record.headers) : null;
    const size = record.data.length + record.subject.length + (headersJson?.length ?? 0);
    if (size > this.#maxBytes) return Promise.resolve("full");
    const { promise, resolve } = Promise.withResolvers<AppendOutcome>();
    if (this.#blocked.length > 0 || this.bytes + size > this.#maxBytes) {
      switch (this.#overflow) {
        case "drop_newest":
          return Promise.resolve("full");
        case "block":
          if (this.#blocked.length >= this.#maxBlocked) return Promise.resolve("full");
          this.#blocked.push({ record, headersJson, size, resolve });
          return promise;
        case "drop_oldest":
          this.#makeRoom(size);
          break;
      }
    }
    this.#enqueue({ record, headersJson, size, resolve });
    return promise;
  }

  /**
   * The oldest stored events, up to `limit`, without removing them. Events still being committed
   * are not included: call {@link Outbox.commit} first to see them.
   *
   * @param limit Most events to return.
   * @returns Stored events, oldest first.
   */
  head(limit: number): StoredRecord[] {
    if (this.#closed || this.#stored === 0) return [];
    const rows = this.#head.all(limit) as {
      seq: number;
      subject: string;
      data: Uint8Array;
      headers: string | null;
      extra: string | null;
      "has_event": number;
    }[];
    return rows.map((r) => ({
      seq: Number(r.seq),
      subject: r.subject,
      data: r.data,
      headers: r.headers === null ? undefined : JSON.parse(r.headers) as [string, string[]][],
      extra: r.extra === null ? undefined : JSON.parse(r.extra) as Record<string, string>,
      hasEvent: r.has_event !== 0,
    }));
  }

  /**
   * Removes every stored event up to and including `seq` (they were delivered), then admits
   * appends that were waiting for room.
   *
   * @param seq The last delivered position.
   */
  remove(seq: number): void {
    if (this.#closed) return;
    const gone = this.#sumUpTo.get(seq) as { n: number; bytes: number };
    this.#deleteUpTo.run(seq);
    this.#stored -= Number(gone.n);
    this.#storedBytes -= Number(gone.bytes);
    this.#admitBlocked();
  }

  /** Commits the appends made so far; resolves once they are durable. */
  commit(): Promise<void> {
    if (this.#pending.length === 0) return Promise.resolve();
    this.#committed ??= Promise.withResolvers<void>();
    const done = this.#committed.promise;
    this.#commitNow();
    return done;
  }

  /**
   * Commits what is pending, refuses appends still waiting for room, and closes the file. Stored
   * events stay for the next run.
   */
  close(): void {
    if (this.#closed) return;
    this.#commitNow();
    this.#closed = true;
    for (const b of this.#blocked.splice(0)) b.resolve("failed");
    this.#db.close();
  }

  #enqueue(p: Pending): void {
    this.#pending.push(p);
    this.#pendingBytes += p.size;
    if (this.#pending.length >= MAX_GROUP) this.#commitNow();
    else this.#commitTimer ??= setTimeout(() => this.#commitNow(), 0);
  }

  #commitNow(): void {
    if (this.#commitTimer !== undefined) {
      clearTimeout(this.#commitTimer);
      this.#commitTimer = undefined;
    }
    const batch = this.#pending;
    const committed = this.#committed;
    this.#committed = undefined;
    if (batch.length === 0 || this.#closed) {
      committed?.resolve();
      return;
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    let outcome: AppendOutcome = "stored";
    try {
      this.#db.exec("BEGIN");
      for (const { record: r, headersJson, size } of batch) {
        this.#insert.run(
          r.subject,
          r.data,
          headersJson,
          r.extra ? JSON.stringify(r.extra) : null,
          r.hasEvent ? 1 : 0,
          size,
        );
      }
      this.#db.exec("COMMIT");
      this.#stored += batch.length;
      for (const p of batch) this.#storedBytes += p.size;
    } catch {
      outcome = "failed";
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* no transaction left to roll back */ }
    }
    for (const p of batch) p.resolve(outcome);
    committed?.resolve();
  }

  /**
   * Discards the oldest events until `size` more bytes fit (drop_oldest). It frees a sixteenth of
   * the outbox beyond what is needed, so that a full outbox under a flood pays for one delete (one
   * fsync) per many appends, not per append.
   */
  #makeRoom(size: number): void {
    let excess = this.bytes + size - this.#maxBytes;
    if (excess <= 0) return;
    excess += Math.floor(this.#maxBytes / 16);
    let dropped = 0;
    while (excess > 0 && this.#stored > 0) {
      const rows = this.#oldest.all() as { seq: number; size: number }[];
      let freed = 0;
      let upTo = 0;
      for (const r of rows) {
        freed += Number(r.size);
        upTo = Number(r.seq);
        if (freed >= excess) break;
      }
      const before = this.#stored;
      this.remove(upTo);
      dropped += before - this.#stored;
      excess -= freed;
    }
    // Still too big: the oldest events are the ones not yet committed.
    while (excess > 0 && this.#pending.length > 0) {
      const p = this.#pending.shift() as Pending;
      this.#pendingBytes -= p.size;
      excess -= p.size;
      dropped++;
      p.resolve("stored"); // accepted, then discarded by the policy: counted as dropped
    }
    if (dropped > 0) {
      this.#dropped += dropped;
      this.#onDrop(dropped);
    }
  }

  #admitBlocked(): void {
    while (this.#blocked.length > 0) {
      const next = this.#blocked[0] as Pending;
      if (this.bytes + next.size > this.#maxBytes) return;
      this.#blocked.shift();
      this.#enqueue(next);
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
