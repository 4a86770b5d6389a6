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
  /** The key in a source/sink/dead_letter that names the address: "subject" (nats), "topic" (mqtt). */
  readonly addressKey: string;
  /** Separator of address levels, for the CEL variable `_tokens`: "." (nats), "/" (mqtt). */
  readonly tokenSeparator: string;
  /**
   * Top-level keys of the connector declaration whose values are secret (never quoted in any
   * message), e.g. ["auth", "tls"]. Values under these keys are shown by type only.
   */
  readonly secretKeys: readonly string[];
  /**
   * Keys of the connector declaration holding URLs that may embed credentials
   * (`nats://user:pw@host`): these are redacted to `nats://***@host` in any message.
   */
  readonly urlKeys: readonly string[];
  /**
   * Checks a validated sink config used as a dead letter; a problem text (e.g. "a dead-letter
   * subject cannot be a template: ...") and the key it concerns, or undefined when fine.
   */
  deadLetterProblem?(settings: K): { key: string; message: string } | undefined;
  /**
   * Checks, at `check` time, files the connector declaration names (creds, nkey seed, CA...):
   * existence/readability/format. Returns problems with their key path under the declaration.
   * Messages may name the files (they are not redacted like values under `secretKeys`), never
   * what the files hold.
   */
  checkFiles?(config: C): Promise<{ path: (string | number)[]; message: string }[]>;
  /** True when its connectors answer `Connector.request` (the `request` processor). */
  readonly requests?: boolean;
  /**
   * Compiles an address template in its sink syntax (`lookup.{sensor}`), for processors that
   * address this connector themselves (`request`). Throws a SyntaxError with a numeric `offset`.
   */
  readonly compileAddress?: (template: string) => AddressTemplate;
  /**
   * Whether a source with these settings delivers messages that can be answered, as
   * `reply: true` pipelines need: true, or why not (a core NATS subscription can, a JetStream
   * consumer cannot). Absent: no source of this type can.
   */
  readonly replies?: (source: S) => true | string;
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

  /** Registered types, sorted by name. */
  types(): AnyConnectorType[] {
    return this.names().map((n) => this.#types.get(n)!);
  }

  /** Registered type names, sorted. */
  names(): string[] {
    return [...this.#types.keys()].sort();
  }
}
