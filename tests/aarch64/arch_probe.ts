// Started by smoke_test.ts through the harness, with the same runtime as Sluice: prints where
// that runtime really runs, so a run that is not on the expected architecture fails loudly.
const probe = { arch: Deno.build.arch, target: Deno.build.target, deno: Deno.version.deno };
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(probe) + "\n"));
