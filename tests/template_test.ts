import assert from "node:assert/strict";
import {
  compileTemplate,
  isRenderFailure,
  type RenderFailure,
  TemplateSyntaxError,
} from "../src/connectors/nats/template.ts";

/** Renders `template` for `event` received on `subject`. */
function render(template: string, event: unknown, subject = "sensors.temperature.t-01") {
  return compileTemplate(template).render(event, subject);
}

/** The failure of a render that must fail. */
function failure(template: string, event: unknown, subject?: string): string {
  const result = render(template, event, subject);
  assert.ok(isRenderFailure(result), `expected a failure, got ${JSON.stringify(result)}`);
  return result.failure;
}

/** The error of a template that must not compile. */
function syntaxError(template: string): TemplateSyntaxError {
  try {
    compileTemplate(template);
  } catch (error) {
    assert.ok(error instanceof TemplateSyntaxError, String(error));
    return error;
  }
  assert.fail(`expected ${JSON.stringify(template)} not to compile`);
}

// Compiling

Deno.test("compileTemplate() marks a template without placeholders static", () => {
  const template = compileTemplate("alerts.high-value");
  assert.equal(template.source, "alerts.high-value");
  assert.equal(template.isStatic, true);
});

Deno.test("compileTemplate() marks a template with placeholders dynamic", () => {
  const template = compileTemplate("alerts.{site}");
  assert.equal(template.source, "alerts.{site}");
  assert.equal(template.isStatic, false);
});

Deno.test("compileTemplate() accepts placeholders that form part of a token", () => {
  assert.equal(render("a.{x}-suffix.b", { x: "v" }), "a.v-suffix.b");
  assert.equal(render("a.pre-{x}.b", { x: "v" }), "a.pre-v.b");
});

Deno.test("compileTemplate() accepts adjacent placeholders", () => {
  assert.equal(render("{a}{b}", { a: "x", b: "y" }), "xy");
});

Deno.test("compileTemplate() accepts a template that is one placeholder", () => {
  assert.equal(render("{site}", { site: "berlin" }), "berlin");
});

// Syntax errors

Deno.test("compileTemplate() rejects an unclosed '{'", () => {
  const error = syntaxError("alerts.{site");
  assert.equal(error.offset, 7);
  assert.equal(error.message, `Unclosed '{' at offset 7 in subject template "alerts.{site"`);
});

Deno.test("compileTemplate() rejects a '}' without '{'", () => {
  const error = syntaxError("alerts.site}.x");
  assert.equal(error.offset, 11);
  assert.equal(error.message, `Unmatched '}' at offset 11 in subject template "alerts.site}.x"`);
});

Deno.test("compileTemplate() rejects a '}' after a closed placeholder", () => {
  assert.equal(syntaxError("a.{b}}").offset, 5);
});

Deno.test("compileTemplate() rejects an empty placeholder", () => {
  const error = syntaxError("a.{}.b");
  assert.equal(error.offset, 2);
  assert.equal(error.message, `Empty placeholder '{}' at offset 2 in subject template "a.{}.b"`);
});

Deno.test("compileTemplate() rejects a '{' inside a placeholder", () => {
  const error = syntaxError("a.{b{c}}");
  assert.equal(error.offset, 4);
  assert.match(error.message, /^Unexpected '\{' inside a placeholder at offset 4/);
});

Deno.test("compileTemplate() rejects a placeholder with spaces", () => {
  const error = syntaxError("a.{ site }");
  assert.equal(error.offset, 2);
  assert.match(error.message, /^Invalid placeholder '\{ site \}' at offset 2 in subject template/);
});

Deno.test("compileTemplate() rejects a placeholder path with an empty segment", () => {
  assert.equal(syntaxError("a.{b..c}").offset, 2);
  assert.equal(syntaxError("a.{.b}").offset, 2);
  assert.equal(syntaxError("a.{b.}").offset, 2);
});

Deno.test("compileTemplate() rejects a placeholder with other characters", () => {
  for (const template of ["{a/b}", "{a[0]}", "{a:b}", "{$a}", "{ä}"]) {
    assert.equal(syntaxError(template).offset, 0, template);
  }
});

Deno.test("compileTemplate() rejects '_tokens' without an index", () => {
  const error = syntaxError("x.{_tokens}");
  assert.equal(error.offset, 2);
  assert.match(error.message, /needs a token index, e\.g\. '\{_tokens\[0\]\}'$/);
  assert.equal(syntaxError("x.{_tokens.a}").offset, 2);
});

Deno.test("compileTemplate() rejects a malformed token index", () => {
  for (const template of ["{_tokens[]}", "{_tokens[-1]}", "{_tokens[a]}", "{_tokens[1]x}"]) {
    assert.equal(syntaxError(template).offset, 0, template);
  }
});

Deno.test("compileTemplate() rejects a token index beyond the safe integer range", () => {
  const error = syntaxError("a.{_tokens[99999999999999999999]}");
  assert.equal(error.offset, 2);
  assert.match(error.message, /is too large/);
});

Deno.test("compileTemplate() rejects an empty template", () => {
  const error = syntaxError("");
  assert.equal(error.offset, 0);
  assert.equal(error.message, `Subject template "" is not a valid subject: subject is empty`);
});

Deno.test("compileTemplate() rejects an empty token in the literal parts", () => {
  const error = syntaxError("a..{b}");
  assert.equal(error.offset, 2);
  assert.equal(
    error.message,
    `Subject template "a..{b}" is not a valid subject: empty token at position 2`,
  );
});

Deno.test("compileTemplate() maps an empty token after a placeholder to the template offset", () => {
  assert.equal(syntaxError("{a}..b").offset, 4);
});

Deno.test("compileTemplate() rejects a trailing dot after a placeholder", () => {
  assert.equal(syntaxError("a.{b}.").offset, 6);
});

Deno.test("compileTemplate() rejects whitespace in the literal parts", () => {
  const error = syntaxError("a.{b} c");
  assert.equal(error.offset, 5);
  assert.match(error.message, /: contains a space$/);
});

Deno.test("compileTemplate() rejects wildcards in the literal parts", () => {
  assert.equal(syntaxError("a.*.{b}").offset, 2);
  const error = syntaxError("a.{b}.>");
  assert.equal(error.offset, 6);
  assert.match(error.message, /: wildcards are not allowed here$/);
});

Deno.test("compileTemplate() rejects a wildcard joined to a placeholder", () => {
  const error = syntaxError("a.{b}*");
  assert.equal(error.offset, 5);
  assert.match(error.message, /: '\*' must be a whole token$/);
});

Deno.test("TemplateSyntaxError is a SyntaxError with a stable code", () => {
  const error = syntaxError("{");
  assert.ok(error instanceof SyntaxError);
  assert.equal(error.code, "template_syntax");
  assert.equal(error.name, "TemplateSyntaxError");
  assert.equal(error.offset, 0);
});

// Rendering

Deno.test("render() returns the source of a static template", () => {
  assert.equal(render("alerts.high-value", { anything: 1 }), "alerts.high-value");
  assert.equal(render("alerts.high-value", null), "alerts.high-value");
});

Deno.test("render() substitutes a string field", () => {
  assert.equal(
    render("alerts.{site}.temperature", { site: "berlin" }),
    "alerts.berlin.temperature",
  );
});

Deno.test("render() substitutes several fields", () => {
  assert.equal(render("{a}.{b}.{a}", { a: "x", b: "y" }), "x.y.x");
});

Deno.test("render() follows a nested path", () => {
  const event = { meta: { location: { site: "berlin" } } };
  assert.equal(render("sites.{meta.location.site}", event), "sites.berlin");
});

Deno.test("render() follows a path into an array by index", () => {
  assert.equal(render("x.{tags.1}", { tags: ["a", "b"] }), "x.b");
});

Deno.test("render() accepts field names with '-' and '_' and digits", () => {
  assert.equal(
    render("x.{sensor-id}.{_kind}.{2}", { "sensor-id": "s", _kind: "k", 2: "n" }),
    "x.s.k.n",
  );
});

Deno.test("render() renders an integer", () => {
  assert.equal(render("floors.{floor}", { floor: 3 }), "floors.3");
  assert.equal(render("floors.{floor}", { floor: -1 }), "floors.-1");
  assert.equal(render("floors.{floor}", { floor: 0 }), "floors.0");
});

Deno.test("render() fails for a number with a decimal point", () => {
  assert.equal(
    failure("t.{temperature}", { temperature: 2.5 }),
    `template value {temperature} "2.5" contains '.'`,
  );
});

Deno.test("render() renders booleans", () => {
  assert.equal(render("flags.{on}.{off}", { on: true, off: false }), "flags.true.false");
});

Deno.test("render() substitutes a source subject token", () => {
  assert.equal(render("kinds.{_tokens[1]}", {}, "sensors.humidity.h-07"), "kinds.humidity");
  assert.equal(render("ids.{_tokens[0]}", {}, "sensors.humidity.h-07"), "ids.sensors");
});

Deno.test("render() mixes fields and source subject tokens", () => {
  const template = compileTemplate("sites.{site}.{_tokens[1]}");
  assert.equal(
    template.render({ site: "berlin" }, "sensors.humidity.h-07"),
    "sites.berlin.humidity",
  );
});

Deno.test("render() takes tokens from each event's own subject", () => {
  const template = compileTemplate("k.{_tokens[2]}");
  assert.equal(template.render({}, "a.b.c"), "k.c");
  assert.equal(template.render({}, "a.b.d"), "k.d");
});

Deno.test("render() fails for a token index beyond the source subject", () => {
  assert.equal(
    failure("k.{_tokens[3]}", {}, "a.b.c"),
    `template value {_tokens[3]} is missing: subject "a.b.c" has 3 tokens`,
  );
  assert.equal(
    failure("k.{_tokens[1]}", {}, "a"),
    `template value {_tokens[1]} is missing: subject "a" has 1 token`,
  );
});

Deno.test("render() does not need an event object for source subject tokens", () => {
  assert.equal(render("k.{_tokens[0]}", "text", "a.b"), "k.a");
});

Deno.test("render() fails for a missing field", () => {
  assert.equal(failure("alerts.{site}", { other: 1 }), "template value {site} is missing");
});

Deno.test("render() fails for a missing nested field", () => {
  assert.equal(failure("x.{a.b.c}", { a: { b: {} } }), "template value {a.b.c} is missing");
  assert.equal(failure("x.{a.b.c}", { a: "flat" }), "template value {a.b.c} is missing");
  assert.equal(failure("x.{a.b.c}", { a: null }), "template value {a.b.c} is missing");
});

Deno.test("render() ignores inherited properties", () => {
  assert.equal(failure("x.{constructor}", {}), "template value {constructor} is missing");
  assert.equal(failure("x.{toString}", {}), "template value {toString} is missing");
  assert.equal(failure("x.{a.length}", { a: "abc" }), "template value {a.length} is missing");
});

Deno.test("render() fails for a field that is null", () => {
  assert.equal(
    failure("alerts.{site}", { site: null }),
    "template value {site} is null, not a string, number or boolean",
  );
});

Deno.test("render() fails for a field that is an object", () => {
  assert.equal(
    failure("alerts.{site}", { site: { name: "berlin" } }),
    "template value {site} is an object, not a string, number or boolean",
  );
});

Deno.test("render() fails for a field that is an array", () => {
  assert.equal(
    failure("alerts.{site}", { site: ["berlin"] }),
    "template value {site} is an array, not a string, number or boolean",
  );
});

Deno.test("render() fails for a value that is not JSON", () => {
  assert.equal(
    failure("alerts.{site}", { site: 1n }),
    "template value {site} is a bigint, not a string, number or boolean",
  );
});

Deno.test("render() fails for an empty string", () => {
  assert.equal(failure("alerts.{site}", { site: "" }), "template value {site} is empty");
  assert.equal(failure("alerts.{site}-x", { site: "" }), "template value {site} is empty");
});

Deno.test("render() fails for a value with a dot", () => {
  assert.equal(
    failure("alerts.{site}", { site: "berlin.mitte" }),
    `template value {site} "berlin.mitte" contains '.'`,
  );
});

Deno.test("render() fails for a value with a space", () => {
  assert.equal(
    failure("alerts.{site}", { site: "new york" }),
    `template value {site} "new york" contains a space`,
  );
});

Deno.test("render() fails for a value with a tab", () => {
  assert.equal(
    failure("alerts.{site}", { site: "a\tb" }),
    `template value {site} "a\\tb" contains a tab`,
  );
});

Deno.test("render() fails for a value with a line break", () => {
  assert.equal(
    failure("alerts.{site}", { site: "a\nb" }),
    `template value {site} "a\\nb" contains a line break`,
  );
  assert.equal(
    failure("alerts.{site}", { site: "a\rb" }),
    `template value {site} "a\\rb" contains a line break`,
  );
});

Deno.test("render() fails for a value with a NUL character", () => {
  assert.equal(
    failure("alerts.{site}", { site: "a\0b" }),
    `template value {site} "a\\u0000b" contains a NUL character`,
  );
});

Deno.test("render() fails for a value with '*'", () => {
  assert.equal(failure("alerts.{site}", { site: "*" }), `template value {site} "*" contains '*'`);
  assert.equal(failure("alerts.{site}", { site: "a*" }), `template value {site} "a*" contains '*'`);
});

Deno.test("render() fails for a value with '>'", () => {
  assert.equal(failure("alerts.{site}", { site: ">" }), `template value {site} ">" contains '>'`);
});

Deno.test("render() fails for an invalid source subject token", () => {
  assert.equal(failure("k.{_tokens[1]}", {}, "a..b"), "template value {_tokens[1]} is empty");
});

Deno.test("render() shortens a long value in the failure", () => {
  const site = `${"a".repeat(100)}.b`;
  assert.equal(
    failure("alerts.{site}", { site }),
    `template value {site} "${"a".repeat(64)}…" contains '.'`,
  );
});

Deno.test("render() fails for fields of an event that is not an object", () => {
  assert.equal(
    failure("alerts.{site}", "berlin"),
    "template value {site} is missing: the event is a string, not a JSON object",
  );
  assert.equal(
    failure("alerts.{site}", 42),
    "template value {site} is missing: the event is a number, not a JSON object",
  );
  assert.equal(
    failure("alerts.{site}", null),
    "template value {site} is missing: the event is null, not a JSON object",
  );
  assert.equal(
    failure("alerts.{site}", undefined),
    "template value {site} is missing: the event is undefined, not a JSON object",
  );
});

Deno.test("render() reports the first failing placeholder", () => {
  assert.equal(failure("{a}.{b}", { b: "" }), "template value {a} is missing");
});

Deno.test("render() returns a failure instead of throwing for a throwing getter", () => {
  const event = {
    get site(): string {
      throw new Error("boom");
    },
  };
  const result = render("alerts.{site}", event);
  assert.ok(isRenderFailure(result));
  assert.equal(result.failure, `template "alerts.{site}" could not be rendered: boom`);
});

Deno.test("render() does not split the subject without token placeholders", () => {
  let splits = 0;
  const subject = {
    split(): string[] {
      splits++;
      return [];
    },
  } as unknown as string;
  assert.equal(compileTemplate("a.{x}").render({ x: "v" }, subject), "a.v");
  assert.equal(splits, 0);
});

Deno.test("isRenderFailure() tells failures from subjects", () => {
  const failed: RenderFailure = { failure: "x" };
  assert.equal(isRenderFailure(failed), true);
  assert.equal(isRenderFailure("a.b"), false);
  assert.equal(isRenderFailure(""), false);
});
