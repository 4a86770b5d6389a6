/**
 * Publishing without headers, as `NatsConnection.publish` does it but with the protocol line
 * encoded by {@link encodeUtf8} instead of TextEncoder: nats-core encodes each `PUB <subject>
 * <size>` line with a TextEncoder call, which cost about a sixth of Sluice's CPU time per event
 * when enriching (measured in docs/request-reply.md). Everything else is nats-core's: the same
 * checks in the same order, the same statistics, the same outbound buffer; whenever this cannot
 * tell that nats-core would accept the message, nats-core publishes it (and throws its error).
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { NatsConnectionImpl } from "@nats-io/nats-core/internal";
import { encodeUtf8 } from "../../codecs/utf8.ts";

const CRLF = new Uint8Array([13, 10]);
/** nats-core's test for an invalid subject. */
const WHITESPACE = /[ \n\r\t]/;

/**
 * Publishes `data` on `subject` without headers or a reply subject.
 *
 * @throws Whatever `nc.publish` throws for the message (closed, draining, invalid subject,
 * payload over the server's maximum).
 */
export function publishData(nc: NatsConnection, subject: string, data: Uint8Array): void {
  const protocol = (nc as Partial<NatsConnectionImpl>).protocol;
  if (
    protocol === undefined || typeof protocol.sendCommand !== "function" ||
    protocol.isClosed() || protocol.noMorePublishing || protocol.info === undefined ||
    data.length > protocol.info.max_payload || subject.length === 0 || WHITESPACE.test(subject)
  ) {
    nc.publish(subject, data);
    return;
  }
  protocol.outBytes += data.length;
  protocol.outMsgs++;
  protocol.sendCommand(encodeUtf8(`PUB ${subject} ${data.length}\r\n`), data, CRLF);
}
