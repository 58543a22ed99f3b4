// Calls to the orchestrator's HTTP API; failures become ApiError with the service and the reason in words.

import { askForToken, authHeaders, currentToken } from "./token.js";

export class ApiError extends Error {
  /** `service`: which service said no (or "orchestrator"); `status`: HTTP status, or null if unreachable. */
  constructor(service, message, status = null) {
    super(message);
    this.service = service;
    this.status = status;
  }
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

async function payloadOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** JSON answer of `method path`; throws ApiError naming the failing service. A 401 asks for the token once. */
export async function api(method, path, body) {
  const used = currentToken();
  let response = await send(method, path, body);
  let payload = await payloadOf(response);
  if (response.status === 401) {
    const reason = detailText(payload && payload.detail) || "The orchestrator asks for the API token.";
    // Retried with a token another request has just been given, or one the user enters now.
    if (currentToken() !== used || askForToken(reason)) {
      response = await send(method, path, body);
      payload = await payloadOf(response);
    }
  }
  if (!response.ok) {
    const detail = detailText(payload && payload.detail) || `${response.status} ${response.statusText}`;
    const service = (payload && payload.service) || "orchestrator";
    throw new ApiError(service, detail, response.status);
  }
  return payload;
}
