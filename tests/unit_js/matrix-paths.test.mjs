// Matrix paths only in matrix.js, provisioning API paths only in guilds-api.js (issue 18):
// eslint.config.js refuses a `/_matrix/` string or template anywhere else in the browser client,
// and a `/_guilds/` or provisioning route (`/servers/…`) outside guilds-api.js. This checks the
// rules catch both forms, let each module have its own, and that the client as it is passes.

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
});

test("matrix.js may name them", async () => {
  assert.deepEqual(await complaints('export const p = "/_matrix/client/v3/sync";\n', "web/static/js/matrix.js"), []);
});

test("a provisioning path outside guilds-api.js is refused, as a string or a template", async () => {
  const prefixed = await complaints('export const p = "/_guilds/v1/servers";\n', "web/static/js/x.js");
  assert.equal(prefixed.length, 1);
  assert.match(prefixed[0], /guilds-api\.js/);
  const route = await complaints(
    "export const p = (api, s, c) => api.request(\"POST\", `/servers/${s}/channels/${c}/sfu`);\n",
    "web/static/js/calls/x.js",
  );
  assert.equal(route.length, 1);
  assert.match(route[0], /guilds-api\.js/);
  // The page's own addresses are not the API's.
  assert.deepEqual(await complaints("export const p = (s) => `#/server/${s}`;\n", "web/static/js/routes-x.js"), []);
  assert.deepEqual(await complaints('export const p = "/invite/abcd";\n', "web/static/js/x.js"), []);
});

test("guilds-api.js may name provisioning paths, and matrix.js Matrix paths, not the other's", async () => {
  assert.deepEqual(await complaints('export const p = "/servers";\n', "web/static/js/guilds-api.js"), []);
  assert.equal((await complaints('export const p = "/_matrix/client/v3/sync";\n', "web/static/js/guilds-api.js")).length, 1);
  assert.equal((await complaints('export const p = "/_guilds/v1/servers";\n', "web/static/js/matrix.js")).length, 1);
});

test("no module of the browser client names a Matrix path but matrix.js, or a provisioning path but guilds-api.js", async () => {
  const results = await eslint.lintFiles(["web/static/js/**/*.js"]);
  const offenders = results
    .filter((r) => r.messages.some((m) => m.ruleId === "no-restricted-syntax"))
    .map((r) => r.filePath);
  assert.deepEqual(offenders, []);
});
