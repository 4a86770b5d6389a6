/**
 * The deno tasks and build flags as shipped, for tests that run with exactly those flags rather
 * than a copy of them that could drift.
 *
 * @example Run Sluice with the start task's permissions
 * ```ts ignore
 * const flags = await taskDenoFlags("start"); // ["--allow-net", "--allow-read=connectors,pipelines", ...]
 * await using sluice = SluiceProcess.start(["run"], { denoFlags: flags });
 * ```
 *
 * @module
 */

import { REPO_ROOT } from "./sluice_process.ts";

/**
 * The words of a task in `deno.json`, split on whitespace (the tasks quote nothing).
 *
 * @param name The task, e.g. `"start"`.
 * @returns Its words, e.g. `["deno", "run", "--allow-net", ..., "src/main.ts", "run"]`.
 * @throws {Error} When there is no such task.
 */
export async function taskWords(name: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    tasks?: Record<string, string>;
  };
  const task = config.tasks?.[name];
  if (task === undefined) throw new Error(`deno.json has no task "${name}"`);
  return task.trim().split(/\s+/);
}

/** A leading `NAME=value` word of a task: an environment variable set for its command. */
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/**
 * The environment a task sets for its command (`NAME=value` words before `deno`).
 *
 * @param name The task, e.g. `"start"`.
 * @returns The variables, e.g. `{ MALLOC_TRIM_THRESHOLD_: "131072" }`; empty when it sets none.
 */
export async function taskEnv(name: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const word of await taskWords(name)) {
    if (!ASSIGNMENT.test(word)) break;
    const at = word.indexOf("=");
    env[word.slice(0, at)] = word.slice(at + 1);
  }
  return env;
}

/**
 * The Deno flags of a `deno run` task: the words between `run` and the entry file (after any
 * `NAME=value` words that set its environment).
 *
 * @param name The task, e.g. `"check"`.
 * @returns The flags, e.g. `["--allow-read=connectors,pipelines", "--allow-env=..."]`.
 * @throws {Error} When the task is not `deno run <flags> <file> ...`.
 */
export async function taskDenoFlags(name: string): Promise<string[]> {
  const all = await taskWords(name);
  const words = all.slice(all.findIndex((w) => !ASSIGNMENT.test(w)));
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(`task "${name}" is not "deno run ...": ${all.join(" ")}`);
  }
  const entry = words.findIndex((w, i) => i > 1 && !w.startsWith("-"));
  if (entry < 0) throw new Error(`task "${name}" names no entry file: ${all.join(" ")}`);
  return words.slice(2, entry);
}

/**
 * Builds the bundle as the `bundle` task does (its `deno bundle`, then `tools/escape_bundle.ts`,
 * joined by `&&`), with the file the task writes, `dist/sluice.js`, replaced by `out`.
 *
 * @param out Where the bundle goes.
 * @param deno The `deno` to run, by default the one running this.
 * @throws {Error} When the task has another shape or a step fails.
 */
export async function runBundleTask(out: string, deno = Deno.execPath()): Promise<void> {
  const words = await taskWords("bundle");
  const commands: string[][] = [[]];
  for (const w of words) w === "&&" ? commands.push([]) : commands.at(-1)!.push(w);
  if (commands.length !== 2 || commands.some((c) => c[0] !== "deno")) {
    throw new Error(`unexpected bundle task: ${words.join(" ")}`);
  }
  for (const command of commands) {
    const args = command.slice(1).map((w) => w.replaceAll("dist/sluice.js", out));
    if (!args.includes(out)) throw new Error(`${command.join(" ")} names no dist/sluice.js`);
    const result = await new Deno.Command(deno, {
      args,
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(result.stderr)}`);
    }
  }
}

/** Settings of `deploy/compile.sh --print-flags`; each maps to its `SLUICE_*` variable. */
export interface CompileFlagOptions {
  /** `SLUICE_CONFIG_DIR`: the configuration directory. */
  configDir: string;
  /** `SLUICE_STATE_DIR`: the outbox directory. */
  stateDir: string;
  /** `SLUICE_ALLOW_NET`: hosts to reach; unset means any. */
  allowNet?: string;
}

/**
 * The flags that `deploy/compile.sh` bakes into executables (permissions, V8), for the given
 * paths.
 *
 * @param options Directories and hosts.
 * @returns The flags, one per element.
 * @throws {Error} When the script fails.
 */
export async function compileFlags(options: CompileFlagOptions): Promise<string[]> {
  const env: Record<string, string> = {
    SLUICE_CONFIG_DIR: options.configDir,
    SLUICE_STATE_DIR: options.stateDir,
  };
  if (options.allowNet !== undefined) env.SLUICE_ALLOW_NET = options.allowNet;
  const out = await new Deno.Command("bash", {
    args: [`${REPO_ROOT}deploy/compile.sh`, "--print-flags"],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(`deploy/compile.sh --print-flags failed: ${text.decode(out.stderr)}`);
  }
  return text.decode(out.stdout).trim().split("\n");
}
