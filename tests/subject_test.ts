import assert from "node:assert/strict";
import {
  findSubjectProblem,
  isValidToken,
  subjectProblem,
} from "../src/connectors/nats/subject.ts";

const LITERAL = { wildcards: false };
const PATTERN = { wildcards: true };

Deno.test("subjectProblem() accepts a literal subject", () => {
  assert.equal(subjectProblem("sensors.temperature.t-01", LITERAL), undefined);
  assert.equal(subjectProblem("a", LITERAL), undefined);
  assert.equal(subjectProblem("Ünïcode.$SYS.a_b-c", LITERAL), undefined);
});

Deno.test("subjectProblem() accepts '*' tokens with wildcards", () => {
  assert.equal(subjectProblem("sensors.*.t-01", PATTERN), undefined);
  assert.equal(subjectProblem("*", PATTERN), undefined);
  assert.equal(subjectProblem("*.*", PATTERN), undefined);
});

Deno.test("subjectProblem() accepts a last '>' token with wildcards", () => {
  assert.equal(subjectProblem("sensors.>", PATTERN), undefined);
  assert.equal(subjectProblem(">", PATTERN), undefined);
  assert.equal(subjectProblem("sensors.*.>", PATTERN), undefined);
});

Deno.test("subjectProblem() rejects an empty subject", () => {
  assert.equal(subjectProblem("", LITERAL), "subject is empty");
  assert.equal(subjectProblem("", PATTERN), "subject is empty");
});

Deno.test("subjectProblem() rejects an empty token in the middle", () => {
  assert.equal(subjectProblem("a..b", LITERAL), "empty token at position 2");
});

Deno.test("subjectProblem() rejects a leading dot", () => {
  assert.equal(subjectProblem(".a", LITERAL), "empty token at position 1");
});

Deno.test("subjectProblem() rejects a trailing dot", () => {
  assert.equal(subjectProblem("a.b.", PATTERN), "empty token at position 3");
});

Deno.test("subjectProblem() rejects a lone dot", () => {
  assert.equal(subjectProblem(".", LITERAL), "empty token at position 1");
});

Deno.test("subjectProblem() rejects a space", () => {
  assert.equal(subjectProblem("a b.c", LITERAL), "contains a space");
});

Deno.test("subjectProblem() rejects a tab", () => {
  assert.equal(subjectProblem("a\tb", LITERAL), "contains a tab");
});

Deno.test("subjectProblem() rejects line breaks", () => {
  assert.equal(subjectProblem("a\nb", LITERAL), "contains a line break");
  assert.equal(subjectProblem("a\rb", PATTERN), "contains a line break");
});

Deno.test("subjectProblem() rejects a NUL character", () => {
  assert.equal(subjectProblem("a\0b", LITERAL), "contains a NUL character");
});

Deno.test("subjectProblem() rejects '*' without wildcards", () => {
  assert.equal(subjectProblem("sensors.*", LITERAL), "wildcards are not allowed here");
});

Deno.test("subjectProblem() rejects '>' without wildcards", () => {
  assert.equal(subjectProblem("sensors.>", LITERAL), "wildcards are not allowed here");
});

Deno.test("subjectProblem() rejects '>' before the last token", () => {
  assert.equal(subjectProblem("sensors.>.a", PATTERN), "'>' is only allowed as the last token");
  assert.equal(subjectProblem(">.>", PATTERN), "'>' is only allowed as the last token");
});

Deno.test("subjectProblem() rejects '*' inside a longer token", () => {
  assert.equal(subjectProblem("a.b*", PATTERN), "'*' must be a whole token");
  assert.equal(subjectProblem("a.*b", PATTERN), "'*' must be a whole token");
  assert.equal(subjectProblem("a.**", PATTERN), "'*' must be a whole token");
  assert.equal(subjectProblem("a.b*c", LITERAL), "'*' must be a whole token");
});

Deno.test("subjectProblem() rejects '>' inside a longer token", () => {
  assert.equal(subjectProblem("a.>b", PATTERN), "'>' must be a whole token");
  assert.equal(subjectProblem("a.b>", LITERAL), "'>' must be a whole token");
});

Deno.test("subjectProblem() reports the first problem", () => {
  assert.equal(subjectProblem("a b..c", LITERAL), "contains a space");
  assert.equal(subjectProblem("a..b c", LITERAL), "empty token at position 2");
});

Deno.test("findSubjectProblem() returns undefined for a valid subject", () => {
  assert.equal(findSubjectProblem("a.*.>", PATTERN), undefined);
});

Deno.test("findSubjectProblem() locates an empty token", () => {
  assert.deepEqual(findSubjectProblem("a..b", LITERAL), {
    reason: "empty token at position 2",
    offset: 2,
  });
  assert.deepEqual(findSubjectProblem(".a", LITERAL), {
    reason: "empty token at position 1",
    offset: 0,
  });
  assert.deepEqual(findSubjectProblem("a.", LITERAL), {
    reason: "empty token at position 2",
    offset: 2,
  });
});

Deno.test("findSubjectProblem() locates a forbidden character", () => {
  assert.deepEqual(findSubjectProblem("ab.c d", LITERAL), {
    reason: "contains a space",
    offset: 4,
  });
});

Deno.test("findSubjectProblem() locates a wildcard", () => {
  assert.deepEqual(findSubjectProblem("a.b.*", LITERAL), {
    reason: "wildcards are not allowed here",
    offset: 4,
  });
  assert.deepEqual(findSubjectProblem("a.bc*", PATTERN), {
    reason: "'*' must be a whole token",
    offset: 4,
  });
});

Deno.test("findSubjectProblem() locates an empty subject at offset 0", () => {
  assert.deepEqual(findSubjectProblem("", LITERAL), { reason: "subject is empty", offset: 0 });
});

Deno.test("isValidToken() accepts ordinary tokens", () => {
  for (const token of ["berlin", "t-01", "A_b", "3", "true", "$SYS", "ünï", "a{b}"]) {
    assert.equal(isValidToken(token), true, token);
  }
});

Deno.test("isValidToken() rejects the empty string", () => {
  assert.equal(isValidToken(""), false);
});

Deno.test("isValidToken() rejects a dot", () => {
  assert.equal(isValidToken("a.b"), false);
  assert.equal(isValidToken("."), false);
});

Deno.test("isValidToken() rejects whitespace and NUL", () => {
  for (const token of ["a b", "a\tb", "a\nb", "a\rb", "a\0b", " "]) {
    assert.equal(isValidToken(token), false, JSON.stringify(token));
  }
});

Deno.test("isValidToken() rejects wildcards, whole or inside a token", () => {
  for (const token of ["*", ">", "a*", ">b"]) {
    assert.equal(isValidToken(token), false, token);
  }
});
