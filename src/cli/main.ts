/**
 * The command-line interface: parse arguments, dispatch, map failures to exit codes.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { describeMissing, missingPermission } from "../permissions.ts";
import { VERSION } from "../version.ts";
import { builtinRegistry } from "../connectors/mod.ts";
import { HELP, parseInvocation } from "./args.ts";
import { check, EXIT, type Output, run } from "./run.ts";

const encoder = new TextEncoder();

/** Writes to the process's stdout and stderr. */
export const stdio: Output = {
  out: (line) => Deno.stdout.writeSync(encoder.encode(line + "\n")) && undefined,
  err: (line) => Deno.stderr.writeSync(encoder.encode(line + "\n")) && undefined,
};

/** Runs the CLI with `args`; resolves to the exit code. */
export async function main(args: readonly string[], output: Output = stdio): Promise<number> {
  // The commands other than `run` and `check` are loaded when named: a running gateway does not
  // hold the fleet client, the schema generator or the permission deriver (docs/performance.md,
  // "Memory"). `fleet` has its own subcommands and flags (fleet_args.ts).
  if (args[0] === "fleet") {
    return await (await import("./fleet.ts")).fleetMain(args.slice(1), output);
  }
  // `permissions COMMAND ARGS...` describes another command line rather than being one.
  const describing = args[0] === "permissions";
  if (describing && args[1] === "fleet") {
    for (const flag of (await import("./fleet.ts")).FLEET_PERMISSIONS) output.out(flag);
    return EXIT.ok;
  }
  let inv;
  try {
    inv = parseInvocation(describing ? args.slice(1) : args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    output.err(`sluice: ${e.message}`);
    return EXIT.config;
  }
  if (describing) {
    try {
      const { denoFlags, derivePermissions } = await import("./permissions.ts");
      for (const flag of denoFlags(await derivePermissions(inv))) output.out(flag);
      return EXIT.ok;
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      output.err(`sluice: ${e.message}`);
      return EXIT.config;
    }
  }
  switch (inv.command) {
    case "help":
      output.out(HELP);
      return EXIT.ok;
    case "version":
      output.out(`sluice ${VERSION}`);
      return EXIT.ok;
    case "check":
      return await check(inv.paths, output);
    case "status":
      return await (await import("./status.ts")).status(inv.url, output);
    case "schema": {
      const { configJsonSchemaText } = await import("./schema.ts");
      output.out(configJsonSchemaText(builtinRegistry()).trimEnd());
      return EXIT.ok;
    }
    case "run": {
      const log = createLogger({ level: inv.logLevel, format: inv.logFormat });
      try {
        return await run(inv.paths, output, log, { watch: inv.watch });
      } catch (e) {
        const missing = missingPermission(e);
        const error = missing
          ? describeMissing(missing)
          : e instanceof Error
          ? e.message
          : String(e);
        log.error("failed", { error });
        return EXIT.failure;
      }
    }
  }
}

/**
 * Last resort for an error that escaped {@link main}: a missing Deno permission is reported as
 * one line naming the flag to add (exit 1) instead of a stack trace; anything else is rethrown.
 *
 * @param error What escaped.
 * @param output Where the line goes.
 * @returns The exit code, 1.
 * @throws {unknown} `error` itself when it is not about a permission.
 */
export function exitOnMissingPermission(error: unknown, output: Output = stdio): number {
  const missing = missingPermission(error);
  if (!missing) throw error;
  output.err(`sluice: ${describeMissing(missing)}`);
  return EXIT.failure;
}
