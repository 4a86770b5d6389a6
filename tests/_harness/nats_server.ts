/**
 * A real nats-server per test: the launcher of `src/demo/nats_server.ts` with timeouts scaled
 * for slow machines and typed views of the monitoring endpoints.
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

import {
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  NatsServer as Launcher,
  type NatsServerOptions,
} from "../../src/demo/nats_server.ts";
import { pollUntil, scaled } from "./wait.ts";

export {
  NatsServerNotFoundError,
  type NatsServerOptions,
  NatsServerStartError,
} from "../../src/demo/nats_server.ts";

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

/**
 * A nats-server child process for integration tests. Always declare it with `await using` so
 * that the process and its temporary directory are gone when the test ends.
 */
export class NatsServer extends Launcher {
  /**
   * Launches nats-server with start and stop timeouts scaled by `SLUICE_TEST_TIMEOUT_SCALE`.
   *
   * @param options Launch options.
   * @returns The running server.
   * @throws {NatsServerNotFoundError} When nats-server is not on PATH.
   * @throws {NatsServerStartError} When the server exits early or does not listen in time.
   */
  static override async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer({
      startTimeoutMs: scaled(DEFAULT_START_TIMEOUT_MS),
      stopTimeoutMs: scaled(DEFAULT_STOP_TIMEOUT_MS),
      ...options,
    });
    await server.launch();
    return server;
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
}
