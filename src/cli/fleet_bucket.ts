/**
 * `sluice fleet init|deploy|undeploy|history|rollback`: the commands that read and write the
 * fleet's KV bucket. The bucket is the desired state; its history gives versions and rollback.
 *
 * @module
 */
import { jetstream } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { parse, stringify } from "yaml";
import { readConfigTexts } from "../config/read.ts";
import { builtinRegistry } from "../connectors/mod.ts";
import { RuntimeError } from "../errors.ts";
import { describeTarget, parseKey, pipelineFilters, targetKey } from "../fleet/keys.ts";
import { validateForDeploy } from "../fleet/validate.ts";
import { withRe2 } from "../filter/re2.ts";
import type { FleetInvocation } from "./fleet_args.ts";
import { table } from "./fleet_format.ts";
import { EXIT, type Output } from "./run.ts";

/** The KV manager of the bucket's JetStream (in `domain` when given). */
function kvm(nc: NatsConnection, domain: string | undefined): Kvm {
  return new Kvm(domain ? jetstream(nc, { domain }) : nc);
}

/** Opens the bucket, saying how to create it when it is missing. */
async function openBucket(nc: NatsConnection, inv: FleetInvocation): Promise<KV> {
  const bucket = inv.bucket;
  const kv = await kvm(nc, inv.domain).open(bucket);
  try {
    await kv.status();
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    if (/not found/i.test(text)) {
      throw new RuntimeError(
        "no_bucket",
        `bucket "${bucket}" does not exist: create it with sluice fleet init`,
      );
    }
    throw e;
  }
  return kv;
}

/** `sluice fleet init`: creates the bucket (or finds it), keeping `history` revisions per key. */
export async function init(nc: NatsConnection, inv: FleetInvocation, out: Output): Promise<number> {
  const kv = await kvm(nc, inv.domain).create(inv.bucket, {
    history: inv.history,
    description: "Sluice fleet: deployed pipelines (sluice fleet deploy)",
  });
  const status = await kv.status();
  if (inv.json) out.out(JSON.stringify({ bucket: inv.bucket, history: status.history }));
  else out.out(`bucket ${inv.bucket} ready (keeps ${status.history} revisions per key)`);
  return EXIT.ok;
}

/** `sluice fleet deploy FILE... TARGET`: validates every file, then writes. */
export async function deploy(
  connect: () => Promise<NatsConnection>,
  inv: FleetInvocation,
  out: Output,
): Promise<number> {
  const { texts, errors: readErrors } = await readConfigTexts(inv.operands);
  const { errors } = readErrors.length > 0
    ? { errors: readErrors }
    : await withRe2(() => validateForDeploy(texts, { registry: builtinRegistry() }));
  if (errors.length > 0) {
    for (const e of errors) out.err(e.toString());
    out.err(
      `${errors.length} configuration error${errors.length === 1 ? "" : "s"}; nothing was deployed`,
    );
    return EXIT.config;
  }
  // The texts as written (not interpolated): the gateway reads them with an empty environment.
  const pipelines: [string, unknown][] = [];
  for (const t of texts) {
    const doc = parse(t.text) as { pipelines?: Record<string, unknown> } | null;
    pipelines.push(...Object.entries(doc?.pipelines ?? {}));
  }
  const nc = await connect();
  try {
    const kv = await openBucket(nc, inv);
    const written: { pipeline: string; key: string; target: string; revision: number }[] = [];
    for (const [name, raw] of pipelines) {
      const text = stringify({ pipelines: { [name]: raw } });
      for (const target of inv.targets) {
        const key = targetKey(target, name);
        const revision = await kv.put(key, text);
        written.push({ pipeline: name, key, target: describeTarget(target), revision });
      }
    }
    if (inv.json) out.out(JSON.stringify(written));
    else {
      for (const w of written) {
        out.out(`deployed ${w.pipeline} to ${w.target} (revision ${w.revision})`);
      }
    }
    return EXIT.ok;
  } finally {
    await nc.close();
  }
}

/** `sluice fleet undeploy NAME TARGET`: deletes the keys (their history stays, for rollback). */
export async function undeploy(
  nc: NatsConnection,
  inv: FleetInvocation,
  out: Output,
): Promise<number> {
  const name = inv.operands[0]!;
  const kv = await openBucket(nc, inv);
  const done: { pipeline: string; key: string; target: string }[] = [];
  const missing: string[] = [];
  for (const target of inv.targets) {
    const key = targetKey(target, name);
    const current = await kv.get(key);
    if (!current || current.operation !== "PUT") {
      missing.push(describeTarget(target));
      continue;
    }
    await kv.delete(key);
    done.push({ pipeline: name, key, target: describeTarget(target) });
  }
  if (inv.json) out.out(JSON.stringify(done));
  else for (const d of done) out.out(`undeployed ${d.pipeline} from ${d.target}`);
  for (const m of missing) out.err(`sluice: pipeline "${name}" is not deployed to ${m}`);
  return missing.length > 0 ? EXIT.failure : EXIT.ok;
}

/** Every revision of pipeline `name` under every target, oldest first. */
async function historyOf(kv: KV, name: string): Promise<KvEntry[]> {
  const entries: KvEntry[] = [];
  // One filter per call: nats-server 2.9 takes one filter subject per consumer.
  for (const key of pipelineFilters(name)) {
    for await (const e of await kv.history({ key })) entries.push(e);
  }
  return entries.sort((a, b) => a.revision - b.revision);
}

function targetOf(key: string): string {
  const parsed = parseKey(key);
  return parsed ? describeTarget(parsed.target) : key;
}

/** `sluice fleet history NAME`. */
export async function history(
  nc: NatsConnection,
  inv: FleetInvocation,
  out: Output,
): Promise<number> {
  const name = inv.operands[0]!;
  const kv = await openBucket(nc, inv);
  const entries = await historyOf(kv, name);
  if (inv.json) {
    out.out(JSON.stringify(entries.map((e) => ({
      revision: e.revision,
      key: e.key,
      target: targetOf(e.key),
      operation: e.operation,
      created: e.created.toISOString(),
      ...(e.operation === "PUT" ? { text: e.string() } : {}),
    }))));
    return EXIT.ok;
  }
  if (entries.length === 0) {
    out.err(`sluice: pipeline "${name}" was never deployed (or its history was purged)`);
    return EXIT.failure;
  }
  out.out(
    table(
      ["REVISION", "TIME", "TARGET", "OPERATION"],
      entries.map((e) => [
        String(e.revision),
        e.created.toISOString(),
        targetOf(e.key),
        e.operation === "PUT" ? "deploy" : "undeploy",
      ]),
    ).join("\n"),
  );
  return EXIT.ok;
}

/**
 * `sluice fleet rollback NAME [--revision N]`: writes an earlier revision's text back to its key
 * (a new revision, so a rollback can itself be rolled back). Without `--revision`: the last
 * changed key goes back to the version before its last change (an undeploy is undone).
 */
export async function rollback(
  nc: NatsConnection,
  inv: FleetInvocation,
  out: Output,
): Promise<number> {
  const name = inv.operands[0]!;
  const kv = await openBucket(nc, inv);
  const entries = await historyOf(kv, name);
  let restore: KvEntry | undefined;
  if (inv.revision !== undefined) {
    restore = entries.find((e) => e.revision === inv.revision);
    if (!restore) {
      out.err(
        `sluice: revision ${inv.revision} is not a revision of "${name}": see sluice fleet history ${name}`,
      );
      return EXIT.failure;
    }
    if (restore.operation !== "PUT") {
      out.err(`sluice: revision ${inv.revision} is an undeploy: choose a deploy revision`);
      return EXIT.failure;
    }
  } else {
    const last = entries.at(-1);
    if (!last) {
      out.err(`sluice: pipeline "${name}" was never deployed`);
      return EXIT.failure;
    }
    restore = entries.filter((e) =>
      e.key === last.key && e.revision < last.revision && e.operation === "PUT"
    ).at(-1);
    if (!restore) {
      out.err(
        `sluice: ${name} on ${targetOf(last.key)} has no earlier version to roll back to`,
      );
      return EXIT.failure;
    }
  }
  const revision = await kv.put(restore.key, restore.value);
  const result = {
    pipeline: name,
    key: restore.key,
    target: targetOf(restore.key),
    restored: restore.revision,
    revision,
  };
  if (inv.json) out.out(JSON.stringify(result));
  else {
    out.out(
      `rolled back ${name} on ${result.target} to revision ${restore.revision} (now revision ${revision})`,
    );
  }
  return EXIT.ok;
}
