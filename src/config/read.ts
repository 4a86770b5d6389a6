/**
 * Reading config files: expanding directories to their `*.yaml`/`*.yml` files and reading each
 * regular file of bounded size. Every problem is collected, none thrown.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { fileError } from "./located.ts";
import { readProblem } from "./small_file.ts";
import { MAX_FILE_BYTES } from "./yaml_file.ts";

/** A config file's text, for loading without touching the file system. */
export interface ConfigText {
  path: string;
  text: string;
}

/**
 * Reads every `*.yaml`/`*.yml` of the given files and directories (directories not recursively,
 * sorted by name).
 *
 * @returns The texts read and the problems met (a missing path, an unreadable or huge file).
 */
export async function readConfigTexts(
  paths: readonly string[],
): Promise<{ texts: ConfigText[]; errors: ConfigError[] }> {
  const errors: ConfigError[] = [];
  const texts: ConfigText[] = [];
  for (const path of await expandPaths(paths, errors)) {
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) {
        // A FIFO or device (/dev/zero) would block or never end: only regular files are read.
        errors.push(fileError(path, "not a regular file: expected a YAML file or a directory"));
        continue;
      }
      if (info.size > MAX_FILE_BYTES) {
        errors.push(
          fileError(
            path,
            `file is ${info.size} bytes; config files may be at most ${MAX_FILE_BYTES}`,
          ),
        );
        continue;
      }
      texts.push({ path, text: await Deno.readTextFile(path) });
    } catch (e) {
      errors.push(fileError(path, readProblem(e)));
    }
  }
  return { texts, errors };
}

async function expandPaths(paths: readonly string[], errors: ConfigError[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      errors.push(fileError(path, readProblem(e)));
      continue;
    }
    if (!info.isDirectory) {
      files.push(path);
      continue;
    }
    const inDir: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) {
        if (!/\.ya?ml$/.test(entry.name)) continue;
        const file = `${path.replace(/\/+$/, "")}/${entry.name}`;
        // Follow symlinks: Kubernetes mounts ConfigMap entries as links into a `..data` directory.
        if (entry.isFile || (entry.isSymlink && await isFileTarget(file))) inDir.push(file);
      }
    } catch (e) {
      errors.push(fileError(path, readProblem(e)));
    }
    files.push(...inDir.sort());
  }
  if (files.length === 0 && errors.length === 0) {
    errors.push(new ConfigError(`no *.yaml or *.yml files in ${paths.join(", ")}`, ""));
  }
  return files;
}

async function isFileTarget(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false; // a dangling link is no config file
  }
}
