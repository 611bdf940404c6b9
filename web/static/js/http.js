// The one place requests are built and their failures turned into errors, for both API clients:
// matrix.js (the homeserver) and guilds-api.js (the provisioning API) differ only in their paths
// and in what they do with an answer. Four kinds of request: JSON (requestJson, nearly all),
// bytes (requestBlob, authenticated media), an upload that reports its progress (uploadWithProgress,
// by XMLHttpRequest, since fetch cannot), and a goodbye sent while the page goes away
// (sendKeepalive).
//
// The access token goes in the Authorization header only, never in a URL; cookies and referrers
// are not sent. An answer that is not 2xx becomes a thrown MatrixError (`{errcode, error}`, the
// shape both servers use); for JSON requests a 429 is waited out (its `retry_after_ms`, else
// `Retry-After`, else a backoff) and retried a bounded number of times; an unreachable server is
// a ConnectionError.

export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RATE_LIMIT_RETRIES = 3;
// Past this we stop waiting silently and let the person know they were rate limited.
const MAX_RATE_LIMIT_WAIT_MS = 10_000;
// What every request leaves out: cookies (the token is the credential) and the page's address.
const REQUEST_DEFAULTS = { credentials: /** @type {const} */ ("omit"), referrerPolicy: /** @type {const} */ ("no-referrer") };

/** An error answered by the homeserver or the provisioning API: its errcode and HTTP status. */
export class MatrixError extends Error {
  /**
   * @param {string} errcode
   * @param {string} message
   * @param {{status?: number, data?: Record<string, any>}} [details]
   */
  constructor(errcode, message, { status = 0, data = {} } = {}) {
    super(message || errcode);
    this.name = "MatrixError";
    this.errcode = errcode;
    this.status = status;
    this.data = data;
  }

  /** How long the server asked us to wait, for M_LIMIT_EXCEEDED; null when it did not say. */
  get retryAfterMs() {
    const value = this.data?.retry_after_ms;
    return Number.isFinite(value) ? value : null;
  }
}

/** The server could not be reached at all (network down, wrong URL, CORS, timeout). */
export class ConnectionError extends Error {
  constructor(baseUrl, cause) {
    super(`Could not reach the homeserver at ${baseUrl}`);
    this.name = "ConnectionError";
    this.baseUrl = baseUrl;
    this.cause = cause;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One JSON request. Resolves `{status, data}` for a 2xx answer (`data` is `{}` for an empty
 * body); throws a MatrixError for any other answer and a ConnectionError when nothing answered.
 * @param {typeof fetch} fetchImpl
 * @param {string|URL} url  without a token in it
 * @param {object} [options]
 * @param {string} [options.method]
 * @param {any} [options.body]  sent as JSON when not undefined
 * @param {string|null} [options.accessToken]  sent as `Authorization: Bearer`
 * @param {number} [options.timeoutMs]
 * @param {boolean} [options.retryRateLimits]  false: a 429 is thrown to the caller at once
 * @param {string} [options.server]  who answers, for messages ("homeserver", "Guilds server")
 * @param {string} [options.origin]  where it was sent, for a ConnectionError
 * @returns {Promise<{status: number, data: any}>}
 */
export async function requestJson(
  fetchImpl,
  url,
  {
    method = "GET",
    body,
    accessToken = null,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    retryRateLimits = true,
    server = "homeserver",
    origin = String(url),
  } = {},
) {
  const headers = authHeaders(accessToken, { Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  for (let attempt = 0; ; attempt++) {
    const response = await send(fetchImpl, url, origin, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const data = await readJson(response);
    if (response.ok) return { status: response.status, data };

    const error = errorFromAnswer(response.status, data, server);
    if (response.status === 429 && retryRateLimits && attempt < MAX_RATE_LIMIT_RETRIES) {
      const wait = retryDelayMs(error, response, attempt);
      if (wait <= MAX_RATE_LIMIT_WAIT_MS) {
        await sleep(wait);
        continue;
      }
    }
    throw error;
  }
}

/**
 * One request answered with bytes (authenticated media): the Blob for a 2xx answer; a thrown
 * MatrixError for any other, a ConnectionError when nothing answered. A 429 is not waited out
 * here: media.js forgets a failed fetch, so the next drawing of the image asks again.
 * @param {typeof fetch} fetchImpl
 * @param {string|URL} url  without a token in it
 * @param {object} [options]
 * @param {string} [options.method]
 * @param {string|null} [options.accessToken]
 * @param {number} [options.timeoutMs]
 * @param {string} [options.server]
 * @param {string} [options.origin]
 * @returns {Promise<Blob>}
 */
export async function requestBlob(
  fetchImpl,
  url,
  { method = "GET", accessToken = null, timeoutMs = DEFAULT_TIMEOUT_MS, server = "homeserver", origin = String(url) } = {},
) {
  const response = await send(fetchImpl, url, origin, {
    method,
    headers: authHeaders(accessToken),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw errorFromAnswer(response.status, await readJson(response), server);
  return response.blob();
}

/**
 * Upload a file with progress (fetch cannot report an upload's progress, so this one request is
 * an XMLHttpRequest), with the same headers and the same errors as requestJson: resolves
 * `{status, data}` for a 2xx answer; throws a MatrixError for any other (`fallback` its sentence
 * when the server wrote none), a ConnectionError when nothing answered or it was aborted.
 * @param {string|URL} url  without a token in it
 * @param {Blob} file  sent as it is, with its own type
 * @param {object} [options]
 * @param {string|null} [options.accessToken]
 * @param {(fraction: number) => void} [options.onProgress]
 * @param {AbortSignal} [options.signal]
 * @param {string} [options.server]
 * @param {string} [options.origin]
 * @param {(status: number) => string} [options.fallback]  the sentence of an error answer
 *   without one
 * @param {typeof XMLHttpRequest} [options.Xhr]  for tests
 * @returns {Promise<{status: number, data: any}>}
 */
export function uploadWithProgress(
  url,
  file,
  {
    accessToken = null,
    onProgress,
    signal,
    server = "homeserver",
    origin = String(url),
    fallback = (status) => `The ${server} answered ${status}`,
    Xhr = globalThis.XMLHttpRequest,
  } = {},
) {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr();
    xhr.open("POST", String(url));
    const headers = authHeaders(accessToken, { "Content-Type": file.type || "application/octet-stream" });
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.onerror = () => reject(new ConnectionError(origin, new Error("upload failed")));
    xhr.onabort = () => reject(new ConnectionError(origin, new Error("upload aborted")));
    xhr.onload = () => {
      let data;
      try {
        data = JSON.parse(xhr.responseText || "{}");
      } catch {
        data = {};
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, data });
        return;
      }
      reject(errorFromAnswer(xhr.status, data, server, fallback(xhr.status)));
    };
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}

/**
 * Send a JSON request that outlives the page (fetch `keepalive`), for a goodbye on pagehide: no
 * answer is awaited and every failure is ignored, since nothing more can be done while the page
 * goes away.
 * @param {typeof fetch} fetchImpl
 * @param {string|URL} url  without a token in it
 * @param {{method: string, body: any, accessToken?: string|null}} request
 */
export function sendKeepalive(fetchImpl, url, { method, body, accessToken = null }) {
  try {
    fetchImpl(url, {
      ...REQUEST_DEFAULTS,
      method,
      keepalive: true,
      headers: authHeaders(accessToken, { "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    }).catch(() => {});
  } catch {
    // Nothing more can be done while the page goes away.
  }
}

/**
 * Headers with the token, when there is one, as `Authorization: Bearer` (never in the URL).
 * @param {string|null} accessToken
 * @param {Record<string, string>} [headers]
 * @returns {Record<string, string>}
 */
function authHeaders(accessToken, headers = {}) {
  return accessToken ? { ...headers, Authorization: `Bearer ${accessToken}` } : { ...headers };
}

/** One fetch with the defaults every request shares; nothing answering is a ConnectionError. */
async function send(fetchImpl, url, origin, init) {
  try {
    return await fetchImpl(url, { ...init, ...REQUEST_DEFAULTS });
  } catch (cause) {
    throw new ConnectionError(origin, cause);
  }
}

/**
 * The MatrixError for an answer's status and decoded body (`{errcode, error}` when the server
 * wrote one; a proxy's page or an empty body gives M_UNKNOWN and a sentence with the status).
 * @param {number} status
 * @param {any} data
 * @param {string} [server]
 * @param {string} [fallback]  the sentence when the server wrote none
 */
export function errorFromAnswer(status, data, server = "homeserver", fallback = `The ${server} answered ${status}`) {
  const errcode = typeof data?.errcode === "string" ? data.errcode : "M_UNKNOWN";
  const message = typeof data?.error === "string" ? data.error : fallback;
  return new MatrixError(errcode, message, { status, data: data ?? {} });
}

/** The body as JSON; `{}` when it is empty or not JSON (a proxy's HTML error page, say). */
export async function readJson(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function retryDelayMs(error, response, attempt) {
  if (error.retryAfterMs !== null) return error.retryAfterMs;
  const header = Number(response.headers?.get?.("Retry-After"));
  if (Number.isFinite(header) && header > 0) return header * 1000;
  return 500 * 2 ** attempt;
}
