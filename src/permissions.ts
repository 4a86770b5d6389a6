/**
 * Recognises a missing Deno permission in an error and names the flag that grants it, so that a
 * run without, say, `--allow-net` stops at once with the flag to add instead of retrying forever
 * or printing a stack trace.
 *
 * @example Name the flag of a failed connection
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeMissing, missingPermission } from "./permissions.ts";
 *
 * const error = new Deno.errors.NotCapable(
 *   'Requires net access to "127.0.0.1:4222", run again with the --allow-net flag',
 * );
 * const missing = missingPermission(new Error("connect failed", { cause: error }));
 * assert.equal(missing?.flag, "--allow-net=127.0.0.1:4222");
 * assert.equal(
 *   describeMissing(missing!),
 *   "permission to connect to 127.0.0.1:4222 is missing: run with --allow-net=127.0.0.1:4222",
 * );
 * ```
 *
 * @module
 */

/** The kinds of Deno permissions, as in `--allow-<kind>`. */
export type PermissionKind = "read" | "write" | "net" | "env" | "sys" | "run" | "ffi" | "import";

const KINDS: readonly PermissionKind[] = [
  "read",
  "write",
  "net",
  "env",
  "sys",
  "run",
  "ffi",
  "import",
];

/** A Deno permission that an operation lacked. */
export interface MissingPermission {
  /** The kind of permission, e.g. `"net"`. */
  kind: PermissionKind;
  /**
   * What was asked for: a path, `host:port`, host name, variable or system API; `undefined`
   * when the operation needs the whole kind (e.g. `Deno.env.toObject()`).
   */
  target: string | undefined;
  /**
   * True when a host name could not be looked up: Deno checks the name, and then the address it
   * resolves to with its port, so both must be granted.
   */
  lookup: boolean;
  /** The flag that grants it, e.g. `--allow-net=127.0.0.1:4222`. */
  flag: string;
}

// "Requires net access to "127.0.0.1:4222", run again with the --allow-net flag"; compiled
// executables end differently ("specify the required permissions during compilation ...").
const DENO_MESSAGE = /^Requires (\w+) access(?: to "(.*)")?, /;

/** How deep {@link missingPermission} follows `cause` chains and aggregated errors. */
const MAX_DEPTH = 8;

/**
 * Finds a missing Deno permission in `error`, its `cause` chain, or the errors of an
 * `AggregateError`. Recognises `Deno.errors.NotCapable` and the `EPERM` errors that Node's
 * `dns.lookup` reports under Deno when a host name may not be resolved.
 *
 * @param error Anything caught.
 * @returns The missing permission, or `undefined` when the error is not about permissions.
 *
 * @example A variable that may not be read
 * ```ts
 * import assert from "node:assert/strict";
 * import { missingPermission } from "./permissions.ts";
 *
 * const e = new Deno.errors.NotCapable(
 *   'Requires env access to "NATS_URL", run again with the --allow-env flag',
 * );
 * assert.equal(missingPermission(e)?.flag, "--allow-env=NATS_URL");
 * assert.equal(missingPermission(new Error("other")), undefined);
 * ```
 */
export function missingPermission(error: unknown): MissingPermission | undefined {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): MissingPermission | undefined => {
    if (depth > MAX_DEPTH || seen.has(e) || typeof e !== "object" || e === null) return undefined;
    seen.add(e);
    const found = fromNotCapable(e) ?? fromLookup(e);
    if (found) return found;
    if (e instanceof AggregateError) {
      for (const inner of e.errors) {
        const r = visit(inner, depth + 1);
        if (r) return r;
      }
    }
    return "cause" in e ? visit(e.cause, depth + 1) : undefined;
  };
  return visit(error, 0);
}

function fromNotCapable(e: object): MissingPermission | undefined {
  if (!(e instanceof Deno.errors.NotCapable)) return undefined;
  const m = DENO_MESSAGE.exec(e.message);
  const kind = m?.[1] as PermissionKind | undefined;
  if (!kind || !KINDS.includes(kind)) return undefined;
  const target = m?.[2] || undefined;
  return { kind, target, lookup: false, flag: flagFor(kind, target) };
}

function fromLookup(e: object): MissingPermission | undefined {
  const { code, syscall, hostname } = e as {
    code?: unknown;
    syscall?: unknown;
    hostname?: unknown;
  };
  if (code !== "EPERM" || syscall !== "getaddrinfo" || typeof hostname !== "string") {
    return undefined;
  }
  return { kind: "net", target: hostname, lookup: true, flag: flagFor("net", hostname) };
}

function flagFor(kind: PermissionKind, target: string | undefined): string {
  return target === undefined ? `--allow-${kind}` : `--allow-${kind}=${target}`;
}

/**
 * One sentence naming what was refused and the flag to add, e.g. `permission to connect to
 * 127.0.0.1:4222 is missing: run with --allow-net=127.0.0.1:4222`. In a compiled executable,
 * whose permissions are fixed when it is built, it says to rebuild instead.
 *
 * @param missing What {@link missingPermission} found.
 * @returns The sentence, without a final period.
 */
export function describeMissing(missing: MissingPermission): string {
  const { kind, target, flag } = missing;
  const what = target === undefined ? "" : ` ${target}`;
  const quoted = target === undefined ? "" : ` "${target}"`;
  let action: string;
  switch (kind) {
    case "net":
      action = missing.lookup ? `look up the host${quoted}` : `connect to${what}`;
      break;
    case "read":
    case "write":
      action = `${kind}${quoted}`;
      break;
    case "env":
      action = target === undefined ? "read the environment" : `read environment variable${quoted}`;
      break;
    case "sys":
      action = target === undefined
        ? "read system information"
        : `read system information${quoted}`;
      break;
    case "run":
      action = `run${quoted}`;
      break;
    default:
      action = `use ${kind}${what}`;
  }
  const how = Deno.build.standalone
    ? `this executable was compiled without it: rebuild it with ${flag}`
    : `run with ${flag}`;
  const also = missing.lookup
    ? ` plus the address it resolves to with the port (--allow-net=${target},<address>:<port>), or name the server by its IP address`
    : "";
  return `permission to ${action} is missing: ${how}${also}`;
}
