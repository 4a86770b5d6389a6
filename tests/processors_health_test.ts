/**
 * Stateful processors in health, through the real CLI: the keys each holds and the keys it
 * forgot beyond `max_keys`, in `/status` and `/metrics`.
 */
import assert from "node:assert/strict";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { pollUntil } from "../dev/wait.ts";
import type { HealthSnapshot } from "../src/health/snapshot.ts";
import { client, connector } from "./_processors_e2e.ts";

Deno.test("/status and /metrics show the keys of dedupe, throttle and window and their evictions", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
health:
  listen: 127.0.0.1:0
pipelines:
  stateful:
    source: { connector: local, subject: sensors.> }
    processors:
      - dedupe: { key: _subject, value: t, max_keys: 2 }
      - throttle: { key: _subject, rate: 100/s }
      - window: { key: _subject, size: 1h, aggregates: { n: { count: true } } }
    sinks: [{ connector: local, subject: out }]
`,
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const url = String((await sluice.waitForMsg("health listening")).url);
  await sluice.waitForMsg("started");
  await using nc = await client(server);
  for (const s of ["a", "b", "c"]) nc.publish(`sensors.${s}`, '{"t":1}');
  await nc.flush();
  const status = await pollUntil(
    async () => {
      const s = await (await fetch(`${url}/status`)).json() as HealthSnapshot;
      return s.pipelines[0]!.counters.in === 3 ? s : undefined;
    },
    10_000,
    "3 events counted",
  );
  assert.deepEqual(
    status.pipelines[0]!.processors.map((p) => [p.processor, p.in, p.out, p.keys, p.evicted]),
    [["0:dedupe", 3, 3, 2, 1], ["1:throttle", 3, 3, 3, 0], ["2:window", 3, 0, 3, 0]],
  );
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const line = (series: string) =>
    metrics.split("\n").find((l) => l.startsWith(series + " "))?.split(" ")[1];
  assert.equal(line('sluice_processor_keys{pipeline="stateful",processor="0:dedupe"}'), "2");
  assert.equal(
    line('sluice_processor_evictions_total{pipeline="stateful",processor="0:dedupe"}'),
    "1",
  );
  assert.equal(line('sluice_processor_keys{pipeline="stateful",processor="2:window"}'), "3");
});
