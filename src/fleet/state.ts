/**
 * The last applied deployed pipelines, kept in `fleet.state_dir` so that a gateway that starts
 * without its uplink runs them. Written atomically: a temporary file, then a rename.
 *
 * @module
 */

/** One deployed pipeline as applied: its KV key, revision and text. */
export interface AppliedPipeline {
  key: string;
  revision: number;
  text: string;
}

/** What `state_dir/applied.json` holds. */
export interface FleetState {
  /** The gateway id that wrote it; a state of another id is not used. */
  id: string;
  /** When it was written (ISO 8601). */
  savedAt: string;
  pipelines: Record<string, AppliedPipeline>;
}

/** The file in `state_dir`. */
export const STATE_FILE = "applied.json";

/**
 * Reads the state; undefined when there is none yet.
 *
 * @throws {Error} when the file exists but cannot be read or is not a state.
 */
export async function readState(dir: string): Promise<FleetState | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/${STATE_FILE}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const value = JSON.parse(text) as Partial<FleetState>;
  if (typeof value.id !== "string" || typeof value.pipelines !== "object" || !value.pipelines) {
    throw new Error(`${dir}/${STATE_FILE} is not a fleet state file`);
  }
  return value as FleetState;
}

/** Writes the state atomically (temporary file in the same directory, then rename). */
export async function writeState(dir: string, state: FleetState): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${dir}/.${STATE_FILE}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(state, null, 2) + "\n");
  await Deno.rename(tmp, `${dir}/${STATE_FILE}`);
}
