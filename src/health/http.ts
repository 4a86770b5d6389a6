/**
 * The HTTP health endpoints, served with `Deno.serve` on the `health.listen` address (loopback
 * unless configured otherwise):
 *
 * - `GET /healthz`: liveness, 200 while the process's event loop answers.
 * - `GET /readyz`: 200 when every connector in use is connected and every pipeline running,
 *   else 503 with a JSON body naming what is not ready and why.
 * - `GET /metrics`: Prometheus text exposition.
 * - `GET /status`: the JSON snapshot.
 *
 * Every answer is computed from the live state when the request arrives.
 *
 * @module
 */
import type { ListenAddress } from "../config/config.ts";
import { RuntimeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { renderMetrics } from "./metrics.ts";
import { EXPOSITION_CONTENT_TYPE } from "./prometheus.ts";
import type { HealthMonitor } from "./snapshot.ts";

/** The paths served, for the 404 hint. */
export const HEALTH_PATHS: readonly string[] = ["/healthz", "/readyz", "/metrics", "/status"];

const JSON_TYPE = "application/json; charset=utf-8";

/** What the endpoints read snapshots from; {@link HealthMonitor} provides it. */
export type SnapshotProvider = Pick<HealthMonitor, "snapshot" | "detailedSnapshot">;

/**
 * Answers one request to the health endpoints. Separate from the server so that tests can call
 * it directly.
 *
 * @param request The request.
 * @param health Where snapshots come from.
 * @returns The response; never rejects (a failure becomes a 500).
 */
export async function handleHealthRequest(
  request: Request,
  health: SnapshotProvider,
): Promise<Response> {
  const method = request.method;
  const path = new URL(request.url).pathname;
  if (!HEALTH_PATHS.includes(path)) {
    return json(404, { error: `not found: try ${HEALTH_PATHS.join(", ")}` }, method);
  }
  if (method !== "GET" && method !== "HEAD") {
    return json(405, { error: `method ${method} not allowed: use GET` }, method, {
      allow: "GET, HEAD",
    });
  }
  try {
    switch (path) {
      case "/healthz":
        return json(200, { alive: true }, method);
      case "/readyz": {
        const s = health.snapshot();
        return s.ready
          ? json(200, { ready: true }, method)
          : json(503, { ready: false, "not_ready": s.not_ready }, method);
      }
      case "/metrics":
        return respond(
          200,
          renderMetrics(await health.detailedSnapshot()),
          EXPOSITION_CONTENT_TYPE,
          method,
        );
      default:
        return json(200, await health.detailedSnapshot(), method);
    }
  } catch (e) {
    return json(500, { error: e instanceof Error ? e.message : String(e) }, method);
  }
}

/** Options of {@link HealthHttpServer.start}. */
export interface HealthHttpOptions {
  /** Where to listen; port 0 picks a free port. */
  listen: ListenAddress;
  /** Where snapshots come from. */
  health: SnapshotProvider;
  /** Logs "health listening" with the address. */
  logger: Logger;
}

/** The running HTTP health server. */
export class HealthHttpServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #address: ListenAddress;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
    this.#address = { hostname: server.addr.hostname, port: server.addr.port };
  }

  /**
   * Starts listening.
   *
   * @param options Address, snapshot source and logger.
   * @returns The running server.
   * @throws {RuntimeError} `health_listen` when the address cannot be bound (in use, not local,
   * no permission).
   */
  static start(options: HealthHttpOptions): HealthHttpServer {
    const { hostname, port } = options.listen;
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname,
        port,
        onListen: () => {},
        onError: (e) => json(500, { error: e instanceof Error ? e.message : String(e) }, "GET"),
      }, (request) => handleHealthRequest(request, options.health));
    } catch (e) {
      const why = e instanceof Deno.errors.AddrInUse
        ? "the address is in use"
        : e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
        ? `${e.message} (grant --allow-net)`
        : e instanceof Error
        ? e.message
        : String(e);
      throw new RuntimeError(
        "health_listen",
        `Cannot listen for health on ${formatAddress(options.listen)}: ${why}`,
        { cause: e },
      );
    }
    const started = new HealthHttpServer(server);
    const address = formatAddress(started.address);
    options.logger.info("health listening", { address, url: `http://${address}` });
    if (!isLoopback(started.address.hostname)) {
      options.logger.warn("health endpoints are reachable from other hosts; they have no auth", {
        address,
      });
    }
    return started;
  }

  /** The address bound (with the actual port when 0 was asked for). */
  get address(): ListenAddress {
    return this.#address;
  }

  /** `http://host:port`, for messages and tests. */
  get url(): string {
    return `http://${formatAddress(this.#address)}`;
  }

  /** Stops listening; requests under way are answered first. */
  async stop(): Promise<void> {
    await this.#server.shutdown();
  }
}

/**
 * Formats an address as `host:port`, with brackets around IPv6 hosts.
 *
 * @param a The address.
 * @returns The text.
 */
export function formatAddress(a: ListenAddress): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/**
 * Whether a host name stays on this machine: `localhost`, 127.0.0.0/8 or `::1`.
 *
 * @param hostname The host to bind.
 * @returns True for loopback addresses.
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function json(
  status: number,
  body: unknown,
  method: string,
  headers: Record<string, string> = {},
): Response {
  return respond(status, JSON.stringify(body) + "\n", JSON_TYPE, method, headers);
}

function respond(
  status: number,
  body: string,
  contentType: string,
  method: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(method === "HEAD" ? null : body, {
    status,
    headers: { "content-type": contentType, "cache-control": "no-store", ...headers },
  });
}
