/**
 * Reading a process's memory and CPU time from `/proc`, and the machine's description for the
 * report. Linux only.
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux). */
export const CLOCK_TICKS_PER_S = 100;

/**
 * Deno grants `/proc` only with `--allow-all`; `cat` (allowed by name) reads it instead.
 */
export async function readProc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stderr: "null" }).output();
  if (!out.success) throw new Error(`Cannot read "${path}"`);
  return new TextDecoder().decode(out.stdout);
}

/** Resident memory of a process, from `/proc/<pid>/status`, in KiB. */
export interface ProcStatus {
  /** Resident set now (`VmRSS`). */
  rssKiB: number;
  /** Peak resident set since start (`VmHWM`). */
  hwmKiB: number;
  /** Anonymous (private) part of the resident set (`RssAnon`). */
  anonKiB: number;
  /** Mapped files in the resident set (`RssFile`), mostly the deno executable. */
  fileKiB: number;
}

/**
 * Reads a process's resident memory.
 *
 * @param pid The process.
 * @returns Its current and peak resident set and their parts.
 */
export async function procStatus(
  pid: number,
): Promise<ProcStatus> {
  const text = await readProc(`/proc/${pid}/status`);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return {
    rssKiB: field("VmRSS"),
    hwmKiB: field("VmHWM"),
    anonKiB: field("RssAnon"),
    fileKiB: field("RssFile"),
  };
}

/** User plus system CPU time of a process, in clock ticks (fields 14 and 15 of `stat`). */
export async function cpuTicks(pid: number): Promise<number> {
  const text = await readProc(`/proc/${pid}/stat`);
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * The machine and the versions of what ran, for the report's first line.
 *
 * @returns CPU count and model, Deno, V8 and nats-server versions.
 */
export async function machine(): Promise<Record<string, string | number>> {
  const cpuinfo = await readProc("/proc/cpuinfo");
  const nats = await new Deno.Command("nats-server", { args: ["--version"] }).output()
    .then((o) => new TextDecoder().decode(o.stdout).trim(), () => "unknown");
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    nats_server: nats.replace(/^nats-server:\s*/, ""),
  };
}
