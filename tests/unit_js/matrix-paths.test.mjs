// Matrix paths only in matrix.js (issue 18): eslint.config.js refuses a `/_matrix/` string or
// template anywhere else in the browser client. This checks the rule catches both forms, lets
// matrix.js have them, and that the client as it is passes it.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ESLint } from "eslint";

const eslint = new ESLint();

async function complaints(code, filePath) {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.filter((m) => m.ruleId === "no-restricted-syntax").map((m) => m.message);
}

test("a /_matrix/ path outside matrix.js is refused, as a string or a template", async () => {
  const strings = await complaints('export const p = "/_matrix/client/v3/sync";\n', "web/static/js/views/x.js");
  assert.equal(strings.length, 1);
  assert.match(strings[0], /matrix\.js/);
  const templates = await complaints(
    "export const p = (r) => `/_matrix/client/v3/rooms/${r}/state`;\n",
    "web/static/js/calls/x.js",
  );
  assert.equal(templates.length, 1);
  assert.deepEqual(await complaints('export const p = "/_guilds/v1/servers";\n', "web/static/js/x.js"), []);
});

test("matrix.js may name them", async () => {
  assert.deepEqual(await complaints('export const p = "/_matrix/client/v3/sync";\n', "web/static/js/matrix.js"), []);
});

test("no module of the browser client names a Matrix path but matrix.js", async () => {
  const results = await eslint.lintFiles(["web/static/js/**/*.js"]);
  const offenders = results
    .filter((r) => r.messages.some((m) => m.ruleId === "no-restricted-syntax"))
    .map((r) => r.filePath);
  assert.deepEqual(offenders, []);
});
