/** Sluice's version, taken from deno.json at build time (a static import, so bundles embed it). */
import meta from "../deno.json" with { type: "json" };

/** The running Sluice version. */
export const VERSION: string = meta.version;
