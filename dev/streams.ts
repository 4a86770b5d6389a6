/**
 * Reading a child process's output as text, shared by the launchers of nats-server and Sluice.
 *
 * @module
 */

/**
 * Reads a byte stream to its end as UTF-8 text, chunk by chunk.
 *
 * @param stream The stream, e.g. a child's stdout.
 * @param sink Receives each decoded piece of text.
 */
export async function readText(
  stream: ReadableStream<Uint8Array>,
  sink: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
  const rest = decoder.decode();
  if (rest) sink(rest);
}
