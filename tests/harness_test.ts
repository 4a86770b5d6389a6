import { assert, assertEquals, assertRejects } from "./_harness/assert.ts";
