/**
 * Every processor kind Sluice ships, registered statically so a bundle or compiled executable
 * contains them. A new kind: a folder under `src/processors/` and one line here.
 *
 * @module
 */
import type { AnyProcessorKind } from "./types.ts";
import { dedupeKind } from "./dedupe/mod.ts";
import { dropKind } from "./drop/mod.ts";
import { filterKind } from "./filter/mod.ts";
import { mapKind } from "./map/mod.ts";
import { renameKind } from "./rename/mod.ts";
import { requestKind } from "./request/mod.ts";
import { sampleKind } from "./sample/mod.ts";
import { throttleKind } from "./throttle/mod.ts";
import { windowKind } from "./window/mod.ts";

/** Processor kinds by the key that names them in a `processors:` entry. */
export class ProcessorRegistry {
  readonly #kinds = new Map<string, AnyProcessorKind>();

  /** Adds a kind; registering one name twice is a programming error. */
  register(kind: AnyProcessorKind): this {
    if (this.#kinds.has(kind.kind)) throw new Error(`Processor kind "${kind.kind}" twice`);
    this.#kinds.set(kind.kind, kind);
    return this;
  }

  /** The kind of a name, if registered. */
  get(kind: string): AnyProcessorKind | undefined {
    return this.#kinds.get(kind);
  }

  /** Registered kinds, in registration order (the order of the reference docs). */
  kinds(): AnyProcessorKind[] {
    return [...this.#kinds.values()];
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.#kinds.keys()].sort();
  }
}

/** A registry with every built-in processor kind. */
export function builtinProcessors(): ProcessorRegistry {
  return new ProcessorRegistry()
    .register(filterKind)
    .register(mapKind)
    .register(dropKind)
    .register(renameKind)
    .register(dedupeKind)
    .register(throttleKind)
    .register(sampleKind)
    .register(windowKind)
    .register(requestKind);
}
