// The API token (OBM_API_TOKEN): taken from the page's `#token=...` (which `make up` prints) or asked for
// when the orchestrator answers 401; kept for this tab's session only (sessionStorage, never a cookie: a
// header is what a cross-site page cannot send) and sent as `Authorization: Bearer` and as the WebSocket's
// `bearer.<token>` subprotocol.

const KEY = "obm.token";
let declined = false;

/** Move a `#token=...` in the page's address into the session, and out of the address bar and history. */
export function takeTokenFromAddress() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (!token) return;
  sessionStorage.setItem(KEY, token.trim());
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
}

/** The token of this session, or null. */
export function currentToken() {
  return sessionStorage.getItem(KEY);
}

/** Headers carrying the token, if there is one. */
export function authHeaders() {
  const token = currentToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * Ask the user for the token (after a 401, `reason` says why); true when one was given.
 * A refusal is remembered for the page's life, so a polling page does not ask again and again.
 */
export function askForToken(reason) {
  if (declined) return false;
  const answer = window.prompt(
    `${reason}\n\nEnter the API token (OBM_API_TOKEN; \`make up\` prints the address that carries it):`,
  );
  if (!answer || !answer.trim()) {
    declined = true;
    return false;
  }
  sessionStorage.setItem(KEY, answer.trim());
  return true;
}
