/**
 * Reading a small file that a declaration names (a config file, a credentials file, a CA), with
 * problems phrased for operators: what is wrong and which permission or mode to fix.
 *
 * @module
 */
import { describeMissing, missingPermission } from "../permissions.ts";

/**
 * Why a file could not be stat'ed or read, in the words of a config error.
 *
 * @param e What `Deno.stat`, `Deno.readDir` or `Deno.readTextFile` threw.
 * @returns E.g. "no such file or directory" or "cannot read it: permission to read ... is missing".
 */
export function readProblem(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  const missing = missingPermission(e);
  if (missing) return `cannot read it: ${describeMissing(missing)}`;
  if (e instanceof Deno.errors.PermissionDenied) {
    return `cannot read it: ${e.message} (the file's owner or mode keeps this user out)`;
  }
  return `cannot read it: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Reads a regular file of at most `maxBytes` as text. A FIFO or device would block or never end,
 * so only regular files are read; a huge file is a mistake, not a config.
 *
 * @param path The file.
 * @param maxBytes Largest size accepted.
 * @returns The text, or the problem (see {@link readProblem}).
 */
export async function readSmallFile(
  path: string,
  maxBytes: number,
): Promise<{ text: string } | { problem: string }> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return { problem: "not a regular file" };
    if (info.size > maxBytes) {
      return { problem: `file is ${info.size} bytes; expected at most ${maxBytes}` };
    }
    return { text: await Deno.readTextFile(path) };
  } catch (e) {
    return { problem: readProblem(e) };
  }
}
