// Human sentences for what can go wrong talking to the homeserver.

import { ConnectionError, MatrixError, UnsupportedAuthError } from "./matrix.js";

/**
 * @param {unknown} error
 * @param {"sign-in" | "sign-up" | "sign-out" | "other"} action  what the person was doing
 */
export function describeError(error, action = "other") {
  if (error instanceof ConnectionError) {
    return `Can't reach the homeserver at ${error.baseUrl}. Check your connection and try again.`;
  }
  if (error instanceof UnsupportedAuthError) {
    return (
      "This homeserver asks for sign-up steps this app can't do yet " +
      `(${error.stages.join(", ") || "none offered"}). ` +
      "Create your account with another Matrix client, then sign in here."
    );
  }
  if (!(error instanceof MatrixError)) {
    return "Something went wrong. Try again.";
  }
  switch (error.errcode) {
    case "M_FORBIDDEN":
      if (action === "sign-in") return "Wrong username or password.";
      if (action === "sign-up") {
        return /disabled|not allowed/i.test(error.message)
          ? "Sign-up is closed on this homeserver. Ask its admin for an account."
          : `The homeserver refused the sign-up: ${error.message}`;
      }
      return `Not allowed: ${error.message}`;
    case "M_USER_IN_USE":
      return "That username is already taken. Try another one.";
    case "M_INVALID_USERNAME":
      return "That username isn't allowed. Use lower-case letters, digits and . _ = - / + only.";
    case "M_EXCLUSIVE":
      return "That username is reserved on this homeserver. Try another one.";
    case "M_WEAK_PASSWORD":
      return `That password is too weak: ${error.message}`;
    case "M_USER_DEACTIVATED":
      return "This account has been deactivated.";
    case "M_LIMIT_EXCEEDED": {
      const seconds = Math.ceil((error.retryAfterMs ?? 0) / 1000);
      return seconds > 0
        ? `Too many attempts. Wait ${seconds} second${seconds === 1 ? "" : "s"} and try again.`
        : "Too many attempts. Wait a moment and try again.";
    }
    case "M_UNKNOWN_TOKEN":
    case "M_MISSING_TOKEN":
      return "Your session has ended. Sign in again.";
    default:
      if (error.status >= 500) {
        return `The homeserver ran into a problem (HTTP ${error.status}). Try again in a moment.`;
      }
      return `The homeserver said: ${error.message}`;
  }
}
