/**
 * Connector types by `type` name. Each type declares its config schemas once (used for validation,
 * types and the reference docs) and a factory. Types are imported statically, so a compiled
 * executable contains every one; a new kind is one folder under `src/connectors/` and one line here.
 *
 * @module
 */
import type { z } from "zod";
import type { AddressTemplate, Connector, Resources } from "./engine/types.ts";

/** Everything the runtime needs to know about one kind of connector. */
export interface ConnectorType<C, S, K> {
  /** The `type:` value in a connector declaration. */
  readonly type: string;
  /** One line for `sluice --help` and the docs. */
  readonly summary: string;
  /** Schema of the connector declaration (without `type`). */
  readonly connectorSchema: z.ZodType<C>;
  /** Schema of a pipeline `source:` naming this connector (without `connector`). */
  readonly sourceSchema: z.ZodType<S>;
  /** Schema of a pipeline sink or `dead_letter:` naming this connector (without `connector`). */
  readonly sinkSchema: z.ZodType<K>;
  /** True when its connectors answer `Connector.request` (the `request` processor). */
  readonly requests?: boolean;
  /**
   * Compiles an address template in its sink syntax (`lookup.{sensor}`), for processors that
   * address this connector themselves (`request`). Throws a SyntaxError with a numeric `offset`.
   */
  readonly compileAddress?: (template: string) => AddressTemplate;
  /**
   * Whether a source with these settings delivers messages that can be answered, as
   * `reply: true` pipelines need (a core NATS subscription can, a JetStream consumer cannot).
   */
  readonly replies?: (source: S) => boolean;
  /** Builds the shared client of one declaration. Nothing connects until `acquire()`. */
  create(name: string, config: C, resources: Resources): Connector<S, K>;
}

/** A registered type with its config types erased; the loader pairs schema output with factory. */
export type AnyConnectorType = ConnectorType<unknown, unknown, unknown>;

/** Erases a connector type's generic parameters for storage in the registry. */
export function defineConnectorType<C, S, K>(t: ConnectorType<C, S, K>): AnyConnectorType {
  return t as unknown as AnyConnectorType;
}

/** Registered connector types by name. */
export class Registry {
  readonly #types = new Map<string, AnyConnectorType>();

  /** Adds a type; registering one name twice is a programming error. */
  register(t: AnyConnectorType): this {
    if (this.#types.has(t.type)) throw new Error(`Connector type "${t.type}" is registered twice`);
    this.#types.set(t.type, t);
    return this;
  }

  get(type: string): AnyConnectorType | undefined {
    return this.#types.get(type);
  }

  /** Registered type names, sorted. */
  names(): string[] {
    return [...this.#types.keys()].sort();
  }
}
