/**
 * The command-line interface: parse arguments, dispatch, map failures to exit codes.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { VERSION } from "../version.ts";
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
  let inv;
  try {
    inv = parseInvocation(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    output.err(`sluice: ${e.message}`);
    return EXIT.config;
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
    case "run": {
      const log = createLogger({ level: inv.logLevel, format: inv.logFormat });
      try {
        return await run(inv.paths, output, log);
      } catch (e) {
        log.error("failed", { error: e instanceof Error ? e.message : String(e) });
        return EXIT.failure;
      }
    }
  }
}
