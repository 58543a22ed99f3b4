// Calls to the orchestrator's HTTP API; failures become ApiError with the service and the reason in words.

import { askForToken, authHeaders, currentToken } from "./token.js";

export class ApiError extends Error {
  /**
   * `service`: which service said no (or "orchestrator"); `status`: HTTP status, or null if unreachable;
   * `payload`: the whole answer (a 409 for a point in history says how far the run has got).
   */
  constructor(service, message, status = null, payload = null) {
    super(message);
    this.service = service;
    this.status = status;
    this.payload = payload;
  }
}

// Fields holding UNIX nanoseconds: past 2^53, which a JSON number parsed as a double cannot hold exactly.
const TIME_FIELD = /(^|_)(ns|at|ts_recv|ts_event)$/;

/** JSON.parse's reviver that reads every time field as a BigInt from its digits, not through a double. */
function exactTimes(key, value, context) {
  return typeof value === "number" && TIME_FIELD.test(key) && Number.isInteger(value) ? BigInt(context.source) : value;
}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc: [...], msg: "..."}]
    return detail.map((item) => `${(item.loc || []).slice(1).join(".") || "request"}: ${item.msg}`).join("; ");
  }
  return detail === undefined || detail === null ? null : JSON.stringify(detail);
}

async function send(method, path, body) {
  const headers = authHeaders();
  const init = { method, headers, credentials: "omit" };
  if (method !== "GET") {
    // Every state-changing request is JSON (the orchestrator answers 415 to anything else).
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  try {
    return await fetch(path, init);
  } catch (error) {
    throw new ApiError("orchestrator", `cannot reach the orchestrator (${error.message})`);
  }
}

async function payloadOf(response, reviver) {
  try {
    return JSON.parse(await response.text(), reviver);
  } catch {
    return null;
  }
}

/** JSON answer of `method path`; throws ApiError naming the failing service. A 401 asks for the token once. */
export async function api(method, path, body, reviver = undefined) {
  const used = currentToken();
  let response = await send(method, path, body);
  let payload = await payloadOf(response, reviver);
  if (response.status === 401) {
    const reason = detailText(payload && payload.detail) || "The orchestrator asks for the API token.";
    // Retried with a token another request has just been given, or one the user enters now.
    if (currentToken() !== used || askForToken(reason)) {
      response = await send(method, path, body);
      payload = await payloadOf(response, reviver);
    }
  }
  if (!response.ok) {
    const detail = detailText(payload && payload.detail) || `${response.status} ${response.statusText}`;
    const service = (payload && payload.service) || "orchestrator";
    throw new ApiError(service, detail, response.status, payload);
  }
  return payload;
}

/** `GET path` with its times (`*_ns`, `ts_recv`, `ts_event`, `at`) as exact BigInt nanoseconds. */
export function apiExactTimes(path) {
  return api("GET", path, undefined, exactTimes);
}
