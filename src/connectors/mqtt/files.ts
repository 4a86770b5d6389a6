/**
 * `check`-time inspection of the files an mqtt connector declaration names (TLS CA, client
 * certificate and key), so a missing or unreadable file is reported before the gateway runs.
 *
 * @module
 */
import type { MqttConnectorConfig } from "./schema.ts";

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** Problems with the TLS files of a declaration, by key path; never quotes their contents. */
export async function checkTlsFiles(
  config: MqttConnectorConfig,
): Promise<{ path: (string | number)[]; message: string }[]> {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const t = config.tls;
  if (!t) return problems;
  const files: [keyof typeof t, string | undefined, string][] = [
    ["ca_file", t.ca_file, "a PEM certificate"],
    ["cert_file", t.cert_file, "a PEM certificate"],
    ["key_file", t.key_file, "a PEM private key"],
  ];
  for (const [key, path, what] of files) {
    if (path === undefined) continue;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "no such file"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied (the file's owner or mode keeps this user out)"
        : e instanceof Error
        ? e.message
        : String(e);
      problems.push({ path: ["tls", key], message: `cannot read "${path}": ${why}` });
      continue;
    }
    if (!PEM.test(text)) {
      problems.push({ path: ["tls", key], message: `"${path}" is not ${what} (no BEGIN line)` });
    }
  }
  return problems;
}
