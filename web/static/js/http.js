// The one JSON request both API clients make: matrix.js (the homeserver) and guilds-api.js (the
// provisioning API) differ only in their paths and in what they do with an answer.
//
// The access token goes in the Authorization header only, never in a URL; cookies and referrers
// are not sent. An answer that is not 2xx becomes a thrown MatrixError (`{errcode, error}`, the
// shape both servers use); a 429 is waited out (its `retry_after_ms`, else `Retry-After`, else a
// backoff) and retried a bounded number of times; an unreachable server is a ConnectionError.

export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RATE_LIMIT_RETRIES = 3;
// Past this we stop waiting silently and let the person know they were rate limited.
const MAX_RATE_LIMIT_WAIT_MS = 10_000;

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
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (cause) {
      throw new ConnectionError(origin, cause);
    }
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
 * The MatrixError for an answer's status and decoded body (`{errcode, error}` when the server
 * wrote one; a proxy's page or an empty body gives M_UNKNOWN and a sentence with the status).
 * @param {number} status
 * @param {any} data
 * @param {string} [server]
 */
export function errorFromAnswer(status, data, server = "homeserver") {
  const errcode = typeof data?.errcode === "string" ? data.errcode : "M_UNKNOWN";
  const message = typeof data?.error === "string" ? data.error : `The ${server} answered ${status}`;
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
