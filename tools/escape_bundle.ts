/**
 * Rewrites every character above U+00FF of a bundle as a `\uXXXX` escape, in place.
 *
 * V8 keeps a script's source for as long as the script lives, one byte per character when every
 * character fits in Latin-1 and two bytes per character otherwise. A handful of dashes in npm
 * packages' comments made the 3.5 MB bundle a 7 MB string in every running Sluice (measured:
 * 3.4 MiB more resident; docs/performance.md, "Memory"). `deno bundle` has no option for this,
 * so the `bundle` task, `deploy/compile.sh` and `deploy/install-cli.sh` run this after it.
 *
 * An escape means the same character in a comment, a string, a regular expression, a template's
 * value and an identifier; only a tagged template's `raw` text would read the escape instead (the
 * bundle has none such: tests/bundle_test.ts runs the escaped bundle).
 *
 *   deno run --allow-read=FILE --allow-write=FILE tools/escape_bundle.ts FILE
 *
 * @module
 */

/**
 * Escapes the characters of `source` above U+00FF (a character beyond the Basic Multilingual
 * Plane becomes its two UTF-16 halves, which JavaScript reads back as the same character).
 *
 * @param source JavaScript source text.
 * @returns The same program with every character in Latin-1.
 */
export function escapeAboveLatin1(source: string): string {
  return source.replace(
    /[\u0100-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

if (import.meta.main) {
  const [file, ...rest] = Deno.args;
  if (file === undefined || rest.length > 0) {
    Deno.stderr.writeSync(new TextEncoder().encode("usage: escape_bundle.ts FILE\n"));
    Deno.exit(2);
  }
  await Deno.writeTextFile(file, escapeAboveLatin1(await Deno.readTextFile(file)));
}
