/**
 * The JetStream client, imported by a JetStream source when it starts rather than at start-up.
 * Loaded at start-up, it and the KV and services clients of `control_library.ts` cost every
 * gateway about 2.5 MiB from source (1 MiB bundled), used or not (docs/performance.md, "Memory").
 * A local module imported with a string literal, so that the bundle and an executable embed it.
 *
 * @module
 */
export {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
