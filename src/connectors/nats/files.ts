/**
 * `check`-time checks of the files a nats connector declaration names: credentials, NKey seed and
 * TLS material. A missing or malformed file is a config error at its key (exit 2), not a connector
 * that retries "unreachable" forever at run time.
 *
 * Messages name the file and what is wrong with it, never its content.
 *
 * @module
 */
import { nkeys } from "@nats-io/nats-core";
import { readSmallFile } from "../../config/small_file.ts";
import type { NatsConnectorConfig } from "./schema.ts";

/** Largest credentials, seed or certificate file read: such files are a few kilobytes. */
const MAX_FILE_BYTES = 1024 * 1024;

/** One problem, at a key path under the connector declaration. */
export interface FileProblem {
  path: (string | number)[];
  message: string;
}

/** What a file should hold: a check of its text, returning why it does not, or undefined. */
type Format = (text: string) => string | undefined;

/** Blocks of a .creds file, as nats.js parses them: `---- BEGIN ... ----` lines around a value. */
const CREDS_BLOCK = /\s*(?:(?:[-]{3,}[^\n]*[-]{3,}\n)(.+)(?:\n\s*[-]{3,}[^\n]*[-]{3,}\n))/ig;

/** A JWT: three base64url parts. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function seedProblem(seed: string): string | undefined {
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed));
    return undefined;
  } catch {
    return 'expected an NKey seed (a line starting with "SU", as `nsc` or `nk -gen user` write it)';
  }
}

const nkeySeed: Format = (text) => seedProblem(text.trim());

const creds: Format = (text) => {
  CREDS_BLOCK.lastIndex = 0;
  const jwt = CREDS_BLOCK.exec(text)?.[1]?.trim();
  const seed = CREDS_BLOCK.exec(text)?.[1]?.trim();
  const expected = "expected a .creds file (a NATS USER JWT block and a USER NKEY SEED block, " +
    "as `nsc generate creds` writes it)";
  if (jwt === undefined || seed === undefined) return expected;
  if (!JWT.test(jwt)) return `${expected}: its first block is not a JWT`;
  const problem = seedProblem(seed);
  return problem ? `${expected}: its second block is not an NKey seed` : undefined;
};

const pem = (label: RegExp, what: string): Format => (text) =>
  label.test(text) ? undefined : `expected ${what} in PEM form ("-----BEGIN ...-----")`;

const certificate = pem(/-----BEGIN CERTIFICATE-----/, "a certificate");
const privateKey = pem(/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key");

/**
 * Checks that every file named by `config` exists, is readable and holds what its key says.
 *
 * @param config A validated nats connector declaration.
 * @returns The problems found, each at its key (e.g. `["auth", "creds_file"]`); empty when fine.
 */
export async function checkNatsFiles(config: NatsConnectorConfig): Promise<FileProblem[]> {
  const wanted: [(string | number)[], string | undefined, Format][] = [
    [["auth", "creds_file"], config.auth?.creds_file, creds],
    [["auth", "nkey_seed_file"], config.auth?.nkey_seed_file, nkeySeed],
    [["tls", "ca_file"], config.tls?.ca_file, certificate],
    [["tls", "cert_file"], config.tls?.cert_file, certificate],
    [["tls", "key_file"], config.tls?.key_file, privateKey],
  ];
  const problems: FileProblem[] = [];
  for (const [path, file, format] of wanted) {
    if (file === undefined) continue;
    const read = await readSmallFile(file, MAX_FILE_BYTES);
    const problem = "problem" in read ? read.problem : format(read.text);
    if (problem) problems.push({ path, message: `file "${file}": ${problem}` });
  }
  return problems;
}
