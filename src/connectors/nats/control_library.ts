/**
 * The JetStream KV and services clients the fleet control plane uses, imported on its first
 * watch or service rather than at start-up: only a gateway with `fleet:` needs them (see
 * `jetstream_library.ts`).
 *
 * @module
 */
export { jetstream } from "@nats-io/jetstream";
export { Kvm } from "@nats-io/kv";
export { Svcm } from "@nats-io/services";
