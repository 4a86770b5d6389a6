/**
 * Stable message ids for the `Nats-Msg-Id` header (`msg_id:` on a sink). JetStream drops a
 * message whose id it has seen within the stream's duplicate window, so a retry after a lost
 * PubAck, or an outbox replay after a crash, is stored once.
 *
 * The SHA-256 comes from `node:crypto`, which costs a gateway about 1.5 MiB: a sink with `msg_id:`
 * awaits {@linkcode loadMsgIdHash} in its `open()`, and no other gateway loads it.
 *
 * @module
 */
import type { createHash as CreateHash } from "node:crypto";

/** `node:crypto`'s createHash, once {@linkcode loadMsgIdHash} loaded it. */
let createHash: typeof CreateHash | undefined;

/** Loads the hash the ids need; later calls return at once. */
export async function loadMsgIdHash(): Promise<void> {
  createHash ??= (await import("node:crypto")).createHash;
}

function sha256(): ReturnType<typeof CreateHash> {
  if (createHash === undefined) {
    throw new Error("msg_id: the hash is not loaded (a sink with msg_id awaits loadMsgIdHash)");
  }
  return createHash("sha256");
}

/** The parsed `msg_id:` setting. */
export type MsgIdSetting = "hash" | { field: string };

/** Computes the id of one outgoing message from the event, the rendered subject and the payload. */
export type MsgIdFn = (event: unknown, subject: string, data: Uint8Array) => string;

/**
 * Builds the id function of a `msg_id:` setting.
 *
 * - `hash`: SHA-256 of the subject and the payload (base64url), identical for identical messages.
 * - `{field: "a.b"}`: the value at that path of the event, when it is a non-empty string or a
 *   finite number; otherwise (a dead letter of malformed input, a missing field) the hash.
 *
 * @param setting The `msg_id:` value.
 * @returns The id function.
 *
 * @example Ids from a field
 * ```ts
 * import { loadMsgIdHash, msgIdFunction } from "./msg_id.ts";
 * await loadMsgIdHash();
 * const id = msgIdFunction({ field: "id" });
 * id({ id: "e-1" }, "up.events", new Uint8Array()); // "e-1"
 * ```
 */
export function msgIdFunction(setting: MsgIdSetting): MsgIdFn {
  if (setting === "hash") return hashId;
  const path = setting.field.split(".");
  return (event, subject, data) => {
    const value = lookup(event, path);
    if (typeof value === "string" && value.length > 0) return sanitize(value);
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    return hashId(event, subject, data);
  };
}

function hashId(_event: unknown, subject: string, data: Uint8Array): string {
  return sha256().update(subject).update("\0").update(data).digest("base64url");
}

/** Header values may not hold CR or LF; ids beyond 256 characters are hashed to stay small. */
function sanitize(id: string): string {
  const clean = id.replace(/[\r\n]/g, " ");
  return clean.length <= 256 ? clean : sha256().update(clean).digest("base64url");
}

function lookup(event: unknown, path: readonly string[]): unknown {
  let value = event;
  for (const key of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
