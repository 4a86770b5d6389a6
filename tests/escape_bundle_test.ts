import assert from "node:assert/strict";
import { escapeAboveLatin1 } from "../tools/escape_bundle.ts";

Deno.test("escaping leaves Latin-1 alone and gives a program that computes the same values", async () => {
  const source = [
    "// an en dash – and an em dash — in a comment",
    'const dash = "a—b";',
    "const degrees = `${20}°C → ok`;",
    "const face = '😀';",
    "const pattern = /[–—]/;",
    "const ünïcode = 1;",
    "export default [dash, degrees, face, face.length, pattern.test('x—y'), ünïcode];",
  ].join("\n");
  const escaped = escapeAboveLatin1(source);
  assert.doesNotMatch(escaped, /[\u0100-\uffff]/);
  assert.match(escaped, /°C/, "Latin-1 characters stay as they are");
  const url = (text: string) =>
    `data:text/javascript;base64,${btoa(String.fromCharCode(...new TextEncoder().encode(text)))}`;
  const before = (await import(url(source))).default;
  const after = (await import(url(escaped))).default;
  assert.deepEqual(after, before);
  assert.deepEqual(after, ["a—b", "20°C → ok", "😀", 2, true, 1]);
});
