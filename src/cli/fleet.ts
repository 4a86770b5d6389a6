/**
 * `sluice fleet ...`: the operator's side of the fleet. Dispatches to the bucket commands
 * (`fleet_bucket.ts`) and the gateway commands (`fleet_gateways.ts`) and maps failures to exit
 * codes: 2 for usage and invalid files, 1 for everything met at run time.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { UsageError } from "../errors.ts";
import { deploy, history, init, rollback, undeploy } from "./fleet_bucket.ts";
import { connectFleet, redactUrl } from "./fleet_connect.ts";
import { FLEET_HELP, type FleetInvocation, parseFleetInvocation } from "./fleet_args.ts";
import { gatewayStatus, listGateways } from "./fleet_gateways.ts";
import { EXIT, type Output } from "./run.ts";

/**
 * What `sluice permissions fleet ...` grants the operator CLI: a short-lived command run by hand,
 * which reads the files it deploys, a creds file, `NATS_URL`, and reaches the server it is given.
 */
export const FLEET_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-net",
  "--allow-env",
  "--allow-sys",
];

/** Runs `sluice fleet` with the arguments after `fleet`; resolves to the exit code. */
export async function fleetMain(args: readonly string[], output: Output): Promise<number> {
  let inv: FleetInvocation;
  try {
    inv = parseFleetInvocation(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    output.err(`sluice: ${e.message}`);
    return EXIT.config;
  }
  if (inv.command === "help") {
    output.out(FLEET_HELP);
    return EXIT.ok;
  }
  const connect = () => connectFleet(inv.connection);
  try {
    if (inv.command === "deploy") return await deploy(connect, inv, output);
    const nc = await connect();
    try {
      return await dispatch(nc, inv, output);
    } finally {
      await nc.close().catch(() => {});
    }
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    output.err(`sluice: fleet ${inv.command}: ${redactUrl(text)}`);
    return EXIT.failure;
  }
}

function dispatch(nc: NatsConnection, inv: FleetInvocation, output: Output): Promise<number> {
  switch (inv.command) {
    case "init":
      return init(nc, inv, output);
    case "ls":
      return listGateways(nc, inv, output);
    case "status":
      return gatewayStatus(nc, inv, output);
    case "undeploy":
      return undeploy(nc, inv, output);
    case "history":
      return history(nc, inv, output);
    case "rollback":
      return rollback(nc, inv, output);
    default:
      return Promise.resolve(EXIT.config);
  }
}
