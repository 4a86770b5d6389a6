/**
 * UTF-8 encoding of short strings without a TextEncoder call: Deno's `TextEncoder.encode` has a
 * fixed cost (~0.25 µs, an op into Rust) that dominates for the short JSON events and protocol
 * lines of the per-event path, while copying ASCII by hand costs a few ns per character.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Longest text copied by hand; longer text goes to TextEncoder, faster per byte. */
const MAX_COPY = 512;
/** Slab size, as Node's Buffer pool: what one retained result may keep alive at most. */
const SLAB_SIZE = 8 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

/**
 * The UTF-8 bytes of `text`, as `TextEncoder.encode` gives them. Short ASCII text is copied into
 * a view of a shared slab (a new slab when it is full; a view keeps its slab alive, and no byte of
 * a slab is ever written twice); anything else is TextEncoder's.
 *
 * @param text The text.
 * @returns Its UTF-8 bytes; the caller may keep them but must not write to them.
 */
export function encodeUtf8(text: string): Uint8Array {
  const n = text.length;
  if (n > MAX_COPY) return encoder.encode(text);
  if (slabUsed + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  const start = slabUsed;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(text);
    slab[start + i] = c;
  }
  slabUsed = start + n;
  return slab.subarray(start, slabUsed);
}
