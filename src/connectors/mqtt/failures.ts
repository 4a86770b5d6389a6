/**
 * What MQTT.js errors mean for Sluice: which refusals retrying cannot fix, which publish failures
 * are final for an event, and one-line texts for logs.
 *
 * @module
 */
import type { SendFailure } from "../../engine/types.ts";

/** Why the broker refused a CONNECT, for reason/return codes that retrying cannot fix. */
export function connackRefusal(
  version: 4 | 5,
  code: number,
): { code: string; text: string } | undefined {
  const auth = "check auth: (username, password) in the connector declaration";
  if (version === 4) {
    switch (code) {
      case 1:
        return { code: "protocol", text: "it does not speak MQTT 3.1.1" };
      case 2:
        return { code: "client_id", text: "client id rejected: set another client_id" };
      case 4:
        return { code: "auth", text: `bad user name or password: ${auth}` };
      case 5:
        return { code: "auth", text: `not authorized: ${auth}` };
    }
    return undefined;
  }
  switch (code) {
    case 0x84:
      return { code: "protocol", text: 'it does not speak MQTT 5: set version: "3.1.1"' };
    case 0x85:
      return { code: "client_id", text: "client id not valid: set another client_id" };
    case 0x86:
      return { code: "auth", text: `bad user name or password: ${auth}` };
    case 0x87:
      return { code: "auth", text: `not authorized: ${auth}` };
    case 0x8a:
      return { code: "auth", text: "this client is banned by the broker" };
    case 0x8c:
      return { code: "auth", text: "bad authentication method" };
  }
  return undefined;
}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Whether the TLS handshake failed because the broker's certificate did not verify. */
export function isTlsVerificationError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && TLS_CODES.has(code)) return true;
  const text = errorText(e).toLowerCase();
  return text.includes("tls not authorized") || text.includes("certificate") ||
    text.includes("unknownissuer") || text.includes("invalid peer certificate");
}

/** A failed QoS 1 publish: PUBACK reason codes that mean "never for this event" are final. */
export function publishFailure(error: Error): SendFailure {
  const code = (error as { code?: unknown }).code;
  // Not authorized, topic name invalid, packet too large, payload format invalid.
  if (code === 0x87 || code === 0x90 || code === 0x95 || code === 0x99) {
    return { kind: "rejected", reason: errorText(error) };
  }
  return { kind: "error", reason: errorText(error) };
}

/** A one-line error text for logs. */
export function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ").slice(0, 300);
}

/** `promise`, or a rejection after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
