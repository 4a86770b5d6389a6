/**
 * The operator's connection to the control plane, from `--server` and the credential flags.
 *
 * @module
 */
import { credsAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { RuntimeError } from "../errors.ts";
import type { FleetConnection } from "./fleet_args.ts";

/**
 * Connects once (no retries: an operator wants to know at once).
 *
 * @throws {RuntimeError} `unreachable`, `auth` or `credentials`, never quoting a secret.
 */
export async function connectFleet(c: FleetConnection): Promise<NatsConnection> {
  const options: Parameters<typeof connect>[0] = {
    servers: c.server.split(",").map((s) => s.trim()),
    name: "sluice-fleet-cli",
    maxReconnectAttempts: 0,
    timeout: 5000,
  };
  if (c.token !== undefined) options.token = c.token;
  if (c.user !== undefined) {
    options.user = c.user;
    options.pass = c.password ?? "";
  }
  if (c.creds !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(c.creds);
    } catch (e) {
      throw new RuntimeError(
        "credentials",
        `cannot read --creds file "${c.creds}": ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    options.authenticator = credsAuthenticator(new TextEncoder().encode(text));
  }
  try {
    return await connect(options);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    const auth = /authoriz|authent/i.test(text);
    throw new RuntimeError(
      auth ? "auth" : "unreachable",
      auth
        ? `the server refused the credentials: ${text}`
        : `cannot connect to ${redactUrl(c.server)}: ${text}`,
    );
  }
}

/** `nats://user:pw@host` → `nats://***@host`: URLs may carry credentials. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, "//***@");
}
