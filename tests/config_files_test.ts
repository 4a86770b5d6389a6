/**
 * Issue 12 item 10: files that a connector names (creds, NKey seed, TLS material) are checked when
 * the config loads - by `check`, `run` and every reload - so that a missing or malformed one is a
 * config error at its key (exit 2), not a connector that fails or retries at run time.
 */
import assert from "node:assert/strict";
import { nkeys } from "@nats-io/nats-core";
import { loadConfig, loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { defineConnectorType, Registry } from "../src/registry.ts";
import { z } from "zod";
import { configDir } from "../dev/config_dir.ts";
import { runSluice } from "../dev/sluice_process.ts";

const registry = builtinRegistry();

const JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl";

function userSeed(): string {
  return new TextDecoder().decode(nkeys.createUser().getSeed());
}

function creds(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----
${jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.

-----BEGIN USER NKEY SEED-----
${seed}
------END USER NKEY SEED------
`;
}

/** A connector `local` whose line 4 on is `extra`: `auth:` at 4:5, its first key at 5:7. */
const connector = (...extra: string[]) =>
  ["connectors:", "  local:", "    type: nats", ...extra].join("\n") + "\n";

async function errorsOf(dir: string): Promise<string[]> {
  try {
    await loadConfig([dir], { registry, env: () => undefined });
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map(String);
    throw e;
  }
  assert.fail("expected the configuration to be rejected");
}

Deno.test("a missing creds_file is an error at its key", async () => {
  await using dir = await configDir(
    connector("    auth:", "      creds_file: /nonexistent/x.creds"),
  );
  assert.deepEqual(await errorsOf(dir.dir), [
    `${dir.file}:5:7: connectors.local.auth.creds_file: file "/nonexistent/x.creds": no such file or directory`,
  ]);
});

Deno.test("a missing nkey_seed_file is an error at its key", async () => {
  await using dir = await configDir(connector("    auth: { nkey_seed_file: /nonexistent/x.nk }"));
  assert.deepEqual(await errorsOf(dir.dir), [
    `${dir.file}:4:13: connectors.local.auth.nkey_seed_file: file "/nonexistent/x.nk": no such file or directory`,
  ]);
});

Deno.test("a seed file that holds no NKey seed is an error naming what is expected", async () => {
  await using dir = await configDir(connector("    auth:", "      nkey_seed_file: DIR/seed.nk"));
  await Deno.writeTextFile(dir.file, (await Deno.readTextFile(dir.file)).replace("DIR", dir.dir));
  await Deno.writeTextFile(`${dir.dir}/seed.nk`, "SUNOTASEED\n");
  const errors = await errorsOf(dir.file);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(
    errors[0]!,
    /:5:7: connectors\.local\.auth\.nkey_seed_file: .*expected an NKey seed/,
  );
  assert.doesNotMatch(errors[0]!, /SUNOTASEED/);
});

Deno.test("a creds file without its seed block is an error naming the expected form", async () => {
  await using dir = await configDir(connector("    auth:", `      creds_file: ${"${D}"}/x.creds`));
  const path = `${dir.dir}/x.creds`;
  await Deno.writeTextFile(path, `-----BEGIN NATS USER JWT-----\n${JWT}\n------END------\n`);
  let errors: string[] = [];
  try {
    await loadConfig([dir.file], { registry, env: (n) => n === "D" ? dir.dir : undefined });
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    errors = e.errors.map(String);
  }
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(errors[0]!, /:5:7: connectors\.local\.auth\.creds_file: .*expected a \.creds file/);
});

Deno.test("a creds file whose seed block is no seed is an error", async () => {
  await using dir = await configDir(connector("    auth:", "      creds_file: DIR/x.creds"));
  await Deno.writeTextFile(dir.file, (await Deno.readTextFile(dir.file)).replace("DIR", dir.dir));
  await Deno.writeTextFile(`${dir.dir}/x.creds`, creds(JWT, "SUAxxxx"));
  const errors = await errorsOf(dir.file);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(
    errors[0]!,
    /:5:7: connectors\.local\.auth\.creds_file: .*second block is not an NKey seed/,
  );
  assert.doesNotMatch(errors[0]!, /SUAxxxx/);
});

Deno.test("valid creds, seed and PEM files load", async () => {
  await using dir = await configDir(
    connector("    auth: { creds_file: DIR/a.creds }") +
      connector("    auth: { nkey_seed_file: DIR/b.nk }").replace(
        "connectors:\n  local",
        "  other",
      ) +
      connector("    tls: { ca_file: DIR/ca.pem }").replace("connectors:\n  local", "  third"),
  );
  await Deno.writeTextFile(
    dir.file,
    (await Deno.readTextFile(dir.file)).replaceAll("DIR", dir.dir),
  );
  await Deno.writeTextFile(`${dir.dir}/a.creds`, creds(JWT, userSeed()));
  await Deno.writeTextFile(`${dir.dir}/b.nk`, userSeed() + "\n");
  await Deno.writeTextFile(
    `${dir.dir}/ca.pem`,
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  );
  const config = await loadConfig([dir.file], { registry, env: () => undefined });
  assert.deepEqual([...config.connectors.keys()], ["local", "other", "third"]);
});

Deno.test("TLS files: a directory and a file without PEM are errors at their keys", async () => {
  await using dir = await configDir(
    connector(
      "    tls:",
      "      ca_file: DIR",
      "      cert_file: DIR/c.pem",
      "      key_file: DIR/k.pem",
    ),
  );
  await Deno.writeTextFile(
    dir.file,
    (await Deno.readTextFile(dir.file)).replaceAll("DIR", dir.dir),
  );
  await Deno.writeTextFile(`${dir.dir}/c.pem`, "-----BEGIN CERTIFICATE-----\nMIIB\n");
  await Deno.writeTextFile(`${dir.dir}/k.pem`, "not a key\n");
  const errors = await errorsOf(dir.file);
  assert.equal(errors.length, 2, errors.join("\n"));
  assert.match(errors[0]!, /:5:7: connectors\.local\.tls\.ca_file: .*not a regular file$/);
  assert.match(
    errors[1]!,
    /:7:7: connectors\.local\.tls\.key_file: .*expected a private key in PEM/,
  );
});

Deno.test("file problems are reported together with the config's other errors", async () => {
  await using dir = await configDir(
    connector("    auth: { creds_file: /nonexistent/x.creds }") + `pipelines:
  p:
    source: { connector: local, subject: in.> }
    sinks: [{ connector: local, subject: "out.*" }]
`,
  );
  const errors = await errorsOf(dir.dir);
  assert.equal(errors.length, 2, errors.join("\n"));
  assert.match(errors[0]!, /:4:13: connectors\.local\.auth\.creds_file: /);
  assert.match(errors[1]!, /:8:\d+: pipelines\.p\.sinks\[0\]\.subject: /);
});

Deno.test("loadConfigTexts() does not touch the files a connector names", () => {
  const text = connector("    auth: { creds_file: /nonexistent/x.creds }");
  const config = loadConfigTexts([{ path: "c.yaml", text }], { registry, env: () => undefined });
  assert.equal(config.connectors.size, 1);
});

const MISSING_CREDS = connector("    auth:", "      creds_file: /nonexistent/gateway.creds") +
  `pipelines:
  p:
    source: { connector: local, subject: in.> }
    sinks: [{ connector: local, subject: out }]
`;

Deno.test("sluice check exits 2 on a missing creds_file, pointing at the key", async () => {
  await using dir = await configDir(MISSING_CREDS);
  const { code, stdout, stderr } = await runSluice(["check", dir.dir]);
  assert.equal(code, 2, stderr);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    `${dir.file}:5:7: connectors.local.auth.creds_file: file "/nonexistent/gateway.creds": ` +
      "no such file or directory\n1 configuration error; nothing was started\n",
  );
});

Deno.test("sluice run exits 2, not 1, on a missing creds_file", async () => {
  await using dir = await configDir(MISSING_CREDS);
  const { code, stderr } = await runSluice(["run", dir.dir]);
  assert.equal(code, 2, stderr);
  assert.match(stderr, /auth\.creds_file: .*no such file or directory/);
});

Deno.test("a connector type's checkFiles gets the parsed config; a throwing one is an error", async () => {
  const seen: unknown[] = [];
  const fileType = (type: string, fail: boolean) =>
    defineConnectorType({
      type,
      summary: "A connector type of this test only",
      connectorSchema: z.strictObject({ ca: z.string().transform((s) => s.toUpperCase()) }),
      sourceSchema: z.strictObject({ topic: z.string() }),
      sinkSchema: z.strictObject({ topic: z.string() }),
      addressKey: "topic",
      tokenSeparator: "/",
      secretKeys: [],
      urlKeys: [],
      checkFiles: (config) => {
        seen.push(config);
        if (fail) return Promise.reject(new Error("boom"));
        return Promise.resolve([{ path: ["ca"], message: "no such CA" }]);
      },
      create: () => {
        throw new Error("never run by this test");
      },
    });
  const registry = new Registry().register(fileType("good", false)).register(fileType("bad", true));
  await using dir = await configDir(
    ["connectors:", "  a: { type: good, ca: x }", "  b: { type: bad, ca: y }"].join("\n") + "\n",
  );
  let errors: string[] = [];
  try {
    await loadConfig([dir.file], { registry, env: () => undefined });
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    errors = e.errors.map(String);
  }
  assert.deepEqual(seen, [{ ca: "X" }, { ca: "Y" }]);
  assert.deepEqual(errors, [
    `${dir.file}:2:20: connectors.a.ca: no such CA`,
    `${dir.file}:3:3: connectors.b: cannot check the files it names: boom`,
  ]);
});
