// The signed-in session, kept in localStorage so it survives reloads and new tabs.

const STORAGE_KEY = "guilds.session.v1";

/**
 * @typedef {object} Session
 * @property {string} userId
 * @property {string} accessToken
 * @property {string} deviceId
 * @property {string} homeserverUrl
 */

/** The stored session, or null when nobody is signed in (or what is stored is unusable). */
export function loadSession() {
  let raw;
  try {
    raw = localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled by the browser
  }
  if (!raw) return null;
  try {
    const data = JSON.parse(raw);
    const fields = ["userId", "accessToken", "deviceId", "homeserverUrl"];
    if (fields.every((name) => typeof data[name] === "string" && data[name])) {
      return {
        userId: data.userId,
        accessToken: data.accessToken,
        deviceId: data.deviceId,
        homeserverUrl: data.homeserverUrl,
      };
    }
  } catch {
    // fall through: a corrupt entry is dropped below
  }
  clearSession();
  return null;
}

/** @param {Session} session */
export function saveSession(session) {
  localStorage.setItem(
    STORAGE_KEY,
    JSON.stringify({
      userId: session.userId,
      accessToken: session.accessToken,
      deviceId: session.deviceId,
      homeserverUrl: session.homeserverUrl,
    }),
  );
}

export function clearSession() {
  try {
    localStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored, nothing to clear
  }
}

/** Build a session from a /login or /register answer. */
export function sessionFromLogin(answer, homeserverUrl) {
  return {
    userId: answer.user_id,
    accessToken: answer.access_token,
    deviceId: answer.device_id,
    // A `well_known` in the answer is not followed: the page's CSP allows only this homeserver.
    homeserverUrl,
  };
}
