// Calls to the orchestrator's HTTP API; failures become ApiError with the service and the reason in words.

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

/** JSON answer of `method path`; throws ApiError naming the failing service. */
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError("orchestrator", `cannot reach the orchestrator (${error.message})`);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const detail = detailText(payload && payload.detail) || `${response.status} ${response.statusText}`;
    const service = (payload && payload.service) || "orchestrator";
    throw new ApiError(service, detail, response.status);
  }
  return payload;
}
