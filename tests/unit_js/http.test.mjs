// The one request helper (web/static/js/http.js) and the two clients built on it: matrix.js and
// guilds-api.js send the token the same way, turn errors into the same MatrixError and wait out
// 429s the same way.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ConnectionError,
  MatrixError,
  requestBlob,
  requestJson,
  sendKeepalive,
  uploadWithProgress,
} from "../../web/static/js/http.js";
import { MatrixClient, MatrixError as MatrixErrorFromClient } from "../../web/static/js/matrix.js";
import { GuildsApi } from "../../web/static/js/guilds-api.js";

const json = (status, body, headers = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });

/** A fetch that answers from a list, one answer per call, recording every request. */
function scripted(...answers) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url: String(url), init, at: Date.now() });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    if (!next) throw new Error("no answer scripted");
    return next();
  };
  return { fetchImpl, calls };
}

test("the token goes in the Authorization header, the body as JSON, nothing else is sent", async () => {
  const { fetchImpl, calls } = scripted(() => json(200, { ok: true }));
  const answer = await requestJson(fetchImpl, "https://hs.test/_matrix/client/v3/x", {
    method: "PUT",
    body: { a: 1 },
    accessToken: "secret-token",
  });
  assert.deepEqual(answer, { status: 200, data: { ok: true } });
  const [{ url, init }] = calls;
  assert.ok(!url.includes("secret-token"));
  assert.equal(init.method, "PUT");
  assert.equal(init.headers.Authorization, "Bearer secret-token");
  assert.equal(init.headers["Content-Type"], "application/json");
  assert.equal(init.body, '{"a":1}');
  assert.equal(init.credentials, "omit");
  assert.equal(init.referrerPolicy, "no-referrer");
});

test("without a token no Authorization header, and a GET has no body", async () => {
  const { fetchImpl, calls } = scripted(() => json(200, {}));
  await requestJson(fetchImpl, "https://hs.test/x");
  assert.equal(calls[0].init.headers.Authorization, undefined);
  assert.equal(calls[0].init.headers["Content-Type"], undefined);
  assert.equal(calls[0].init.body, undefined);
});

test("an error answer becomes a MatrixError with its errcode, sentence, status and body", async () => {
  const { fetchImpl } = scripted(() => json(403, { errcode: "M_FORBIDDEN", error: "You need manage_channels" }));
  const error = await requestJson(fetchImpl, "https://hs.test/x").catch((e) => e);
  assert.ok(error instanceof MatrixError);
  assert.equal(error.errcode, "M_FORBIDDEN");
  assert.equal(error.message, "You need manage_channels");
  assert.equal(error.status, 403);
  assert.deepEqual(error.data, { errcode: "M_FORBIDDEN", error: "You need manage_channels" });
  // The same class whichever module it is imported from.
  assert.equal(MatrixErrorFromClient, MatrixError);
});

test("a body that is not JSON (a proxy's page) gives M_UNKNOWN and a sentence naming the server", async () => {
  const { fetchImpl } = scripted(() => new Response("<html>Bad gateway</html>", { status: 502 }));
  const error = await requestJson(fetchImpl, "https://x.test/", { server: "Guilds server" }).catch((e) => e);
  assert.equal(error.errcode, "M_UNKNOWN");
  assert.equal(error.message, "The Guilds server answered 502");
  assert.equal(error.status, 502);
});

test("nothing answering is a ConnectionError naming where it was sent", async () => {
  const { fetchImpl } = scripted(new TypeError("fetch failed"));
  const error = await requestJson(fetchImpl, "https://hs.test/x", { origin: "https://hs.test" }).catch((e) => e);
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.baseUrl, "https://hs.test");
});

test("a 429 is waited out for retry_after_ms, then the request is made again", async () => {
  const { fetchImpl, calls } = scripted(
    () => json(429, { errcode: "M_LIMIT_EXCEEDED", error: "Too many", retry_after_ms: 60 }),
    () => json(200, { done: 1 }),
  );
  const answer = await requestJson(fetchImpl, "https://hs.test/x", { method: "POST", body: {} });
  assert.deepEqual(answer.data, { done: 1 });
  assert.equal(calls.length, 2);
  assert.ok(calls[1].at - calls[0].at >= 50, `waited ${calls[1].at - calls[0].at} ms`);
});

test("a 429 is thrown at once when the caller waits it out itself, or when the wait is too long", async () => {
  const limited = (ms) => () => json(429, { errcode: "M_LIMIT_EXCEEDED", error: "Too many", retry_after_ms: ms });
  let { fetchImpl, calls } = scripted(limited(5));
  let error = await requestJson(fetchImpl, "https://hs.test/x", { retryRateLimits: false }).catch((e) => e);
  assert.equal(error.errcode, "M_LIMIT_EXCEEDED");
  assert.equal(error.retryAfterMs, 5);
  assert.equal(calls.length, 1);
  ({ fetchImpl, calls } = scripted(limited(60_000)));
  error = await requestJson(fetchImpl, "https://hs.test/x").catch((e) => e);
  assert.equal(error.retryAfterMs, 60_000);
  assert.equal(calls.length, 1);
});

test("429s are retried a bounded number of times", async () => {
  const limited = () => json(429, { errcode: "M_LIMIT_EXCEEDED", error: "Too many", retry_after_ms: 1 });
  const { fetchImpl, calls } = scripted(limited, limited, limited, limited, limited);
  const error = await requestJson(fetchImpl, "https://hs.test/x").catch((e) => e);
  assert.equal(error.errcode, "M_LIMIT_EXCEEDED");
  assert.equal(calls.length, 4);
});

test("Retry-After is honoured when the body names no wait", async () => {
  const { fetchImpl, calls } = scripted(
    () => json(429, { errcode: "M_LIMIT_EXCEEDED" }, { "Retry-After": "0.05" }),
    () => json(200, {}),
  );
  await requestJson(fetchImpl, "https://hs.test/x");
  assert.ok(calls[1].at - calls[0].at >= 40);
});

test("MatrixClient and GuildsApi both go through it: same header, same error type, same 429 wait", async () => {
  const limited = () => json(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1 });
  const matrix = scripted(limited, () => json(200, { user_id: "@a:hs.test" }));
  const client = new MatrixClient({ baseUrl: "https://hs.test/", accessToken: "tok", fetch: matrix.fetchImpl });
  assert.deepEqual(await client.whoami(), { user_id: "@a:hs.test" });
  assert.equal(matrix.calls.length, 2);
  assert.equal(matrix.calls[1].url, "https://hs.test/_matrix/client/v3/account/whoami");
  assert.equal(matrix.calls[1].init.headers.Authorization, "Bearer tok");

  const guilds = scripted(limited, () => json(404, { errcode: "M_NOT_FOUND", error: "No such server" }));
  const api = new GuildsApi({ baseUrl: "https://guilds.test", accessToken: "tok", fetch: guilds.fetchImpl });
  const error = await api.getServer("!s:hs.test").catch((e) => e);
  assert.ok(error instanceof MatrixError);
  assert.equal(error.errcode, "M_NOT_FOUND");
  assert.equal(error.status, 404);
  assert.equal(guilds.calls.length, 2);
  assert.equal(guilds.calls[1].url, "https://guilds.test/_guilds/v1/servers/!s%3Ahs.test");
  assert.equal(guilds.calls[1].init.headers.Authorization, "Bearer tok");
});

test("GuildsApi: a 204 is null, a 202 is followed to its operation's result", async () => {
  const { fetchImpl, calls } = scripted(
    () => new Response(null, { status: 204 }),
    () => json(202, { operation_id: "op1", status: "pending" }),
    () => json(200, { operation_id: "op1", status: "pending" }),
    () => json(200, { operation_id: "op1", status: "done", result: { channel_id: "!c" } }),
  );
  const api = new GuildsApi({ baseUrl: "https://guilds.test", accessToken: "tok", fetch: fetchImpl });
  assert.equal(await api.deleteChannel("!s", "!c"), null);
  assert.deepEqual(await api.updateChannel("!s", "!c", { order: 0 }), { channel_id: "!c" });
  assert.equal(calls[2].url, "https://guilds.test/_guilds/v1/operations/op1");
});

test("GuildsApi: a failed operation is thrown as a MatrixError with its status", async () => {
  const { fetchImpl } = scripted(
    () => json(202, { operation_id: "op2", status: "pending" }),
    () =>
      json(200, {
        operation_id: "op2",
        status: "failed",
        http_status: 403,
        error: { errcode: "M_FORBIDDEN", error: "You need manage_channels" },
      }),
  );
  const api = new GuildsApi({ baseUrl: "https://guilds.test", accessToken: "tok", fetch: fetchImpl });
  const error = await api.updateCategory("!s", "!k", { order: 1 }).catch((e) => e);
  assert.ok(error instanceof MatrixError);
  assert.equal(error.status, 403);
  assert.equal(error.message, "You need manage_channels");
});

test("GuildsApi: a channel's SFU credentials are asked for the joining device", async () => {
  const { fetchImpl, calls } = scripted(() => json(200, { url: "wss://sfu.test", token: "t" }));
  const api = new GuildsApi({ baseUrl: "https://guilds.test", accessToken: "tok", fetch: fetchImpl });
  assert.deepEqual(await api.channelSfu("!s:hs.test", "!c:hs.test", "DEV"), { url: "wss://sfu.test", token: "t" });
  assert.equal(calls[0].url, "https://guilds.test/_guilds/v1/servers/!s%3Ahs.test/channels/!c%3Ahs.test/sfu");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.body, '{"device_id":"DEV"}');
});

test("GuildsApi: the invite's icon address is the API's, the code encoded, on the API's origin", () => {
  const api = new GuildsApi({ baseUrl: "https://guilds.test/" });
  assert.equal(api.inviteIconUrl("ab/cd"), "https://guilds.test/_guilds/v1/invites/ab%2Fcd/icon");
});

// --- bytes, uploads and goodbyes go through the same helper ------------------------------------

test("requestBlob: the bytes of a 2xx answer, the token in the header only", async () => {
  const { fetchImpl, calls } = scripted(() => new Response("PNGDATA", { status: 200 }));
  const client = new MatrixClient({ baseUrl: "https://hs.test", accessToken: "tok", fetch: fetchImpl });
  const blob = await client.mediaBlob("hs.test", "abc");
  assert.equal(await blob.text(), "PNGDATA");
  assert.ok(!calls[0].url.includes("tok"));
  assert.equal(calls[0].init.headers.Authorization, "Bearer tok");
  assert.equal(calls[0].init.credentials, "omit");
  assert.equal(calls[0].init.referrerPolicy, "no-referrer");
});

test("requestBlob: an error answer is the same MatrixError, nothing answering a ConnectionError", async () => {
  const { fetchImpl } = scripted(
    () => json(404, { errcode: "M_NOT_FOUND", error: "Not found" }),
    () => new Response("<html>Bad gateway</html>", { status: 502 }),
    new TypeError("fetch failed"),
  );
  const missing = await requestBlob(fetchImpl, "https://hs.test/m").catch((e) => e);
  assert.ok(missing instanceof MatrixError);
  assert.equal(missing.errcode, "M_NOT_FOUND");
  assert.equal(missing.status, 404);
  const proxy = await requestBlob(fetchImpl, "https://hs.test/m").catch((e) => e);
  assert.equal(proxy.message, "The homeserver answered 502");
  const down = await requestBlob(fetchImpl, "https://hs.test/m", { origin: "https://hs.test" }).catch((e) => e);
  assert.ok(down instanceof ConnectionError);
  assert.equal(down.baseUrl, "https://hs.test");
});

test("sendKeepalive: a JSON goodbye that outlives the page, every failure ignored", async () => {
  const { fetchImpl, calls } = scripted(new TypeError("fetch failed"));
  sendKeepalive(fetchImpl, "https://hs.test/leave", { method: "PUT", body: { a: 1 }, accessToken: "tok" });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(calls[0].init.keepalive, true);
  assert.equal(calls[0].init.method, "PUT");
  assert.equal(calls[0].init.body, '{"a":1}');
  assert.equal(calls[0].init.headers.Authorization, "Bearer tok");
  assert.equal(calls[0].init.credentials, "omit");
  // A fetch that throws at once (the page is already gone) is ignored too.
  sendKeepalive(() => {
    throw new TypeError("gone");
  }, "https://hs.test/leave", { method: "PUT", body: {} });
});

/**
 * An XMLHttpRequest that answers as told once sent, recording what was asked (Node has none).
 * @param {{status?: number, body?: string, fail?: boolean}} answer
 */
function scriptedXhr(answer) {
  const sent = [];
  class Xhr {
    constructor() {
      this.headers = {};
      this.upload = { onprogress: null };
      sent.push(this);
    }
    open(method, url) {
      this.method = method;
      this.url = url;
    }
    setRequestHeader(name, value) {
      this.headers[name] = value;
    }
    abort() {
      this.onabort?.();
    }
    send(body) {
      this.body = body;
      setTimeout(() => {
        if (answer.fail) return this.onerror?.();
        this.upload.onprogress?.({ lengthComputable: true, loaded: 1, total: 2 });
        this.status = answer.status ?? 200;
        this.responseText = answer.body ?? "";
        this.onload?.();
      }, 0);
    }
  }
  return { Xhr, sent };
}

test("uploadWithProgress: the file with its type, the token in the header, progress reported", async () => {
  const { Xhr, sent } = scriptedXhr({ status: 200, body: '{"content_uri":"mxc://hs.test/x"}' });
  const progress = [];
  const file = new Blob(["hello"], { type: "text/plain" });
  const answer = await uploadWithProgress("https://hs.test/up", file, { accessToken: "tok", onProgress: (f) => progress.push(f), Xhr });
  assert.deepEqual(answer, { status: 200, data: { content_uri: "mxc://hs.test/x" } });
  assert.equal(sent[0].method, "POST");
  assert.equal(sent[0].headers.Authorization, "Bearer tok");
  assert.equal(sent[0].headers["Content-Type"], "text/plain");
  assert.equal(sent[0].body, file);
  assert.deepEqual(progress, [0.5]);
});

test("uploadWithProgress: errors in the same shape as every other request", async () => {
  const file = new Blob(["x"]);
  const refused = await uploadWithProgress("https://hs.test/up", file, {
    Xhr: scriptedXhr({ status: 413, body: '{"errcode":"M_TOO_LARGE","error":"File too large"}' }).Xhr,
  }).catch((e) => e);
  assert.ok(refused instanceof MatrixError);
  assert.equal(refused.errcode, "M_TOO_LARGE");
  assert.equal(refused.message, "File too large");
  assert.equal(refused.status, 413);
  const proxy = await uploadWithProgress("https://hs.test/up", file, {
    Xhr: scriptedXhr({ status: 413, body: "<html>too large</html>" }).Xhr,
    fallback: (status) => `The upload failed (${status})`,
  }).catch((e) => e);
  assert.equal(proxy.errcode, "M_UNKNOWN");
  assert.equal(proxy.message, "The upload failed (413)");
  const down = await uploadWithProgress("https://hs.test/up", file, { Xhr: scriptedXhr({ fail: true }).Xhr, origin: "https://hs.test" }).catch((e) => e);
  assert.ok(down instanceof ConnectionError);
  assert.equal(down.baseUrl, "https://hs.test");
  const controller = new AbortController();
  const pending = uploadWithProgress("https://hs.test/up", file, { Xhr: scriptedXhr({}).Xhr, signal: controller.signal });
  controller.abort();
  assert.ok((await pending.catch((e) => e)) instanceof ConnectionError);
});
