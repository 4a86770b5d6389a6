/**
 * A temporary directory holding one config file, for tests that run Sluice on a config they write.
 *
 * @module
 */

/** A temporary directory with one config file, removed on dispose. */
export interface ConfigDir extends AsyncDisposable {
  dir: string;
  file: string;
}

/**
 * Writes `yaml` as `sluice.yaml` into a fresh temporary directory.
 *
 * @param yaml The config file's text.
 * @param prefix Prefix of the directory's name, to tell tests' leftovers apart.
 * @returns The directory and file; `await using` removes them.
 */
export async function configDir(yaml: string, prefix = "sluice-test-"): Promise<ConfigDir> {
  const dir = await Deno.makeTempDir({ prefix });
  const file = `${dir}/sluice.yaml`;
  await Deno.writeTextFile(file, yaml);
  return {
    dir,
    file,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}
