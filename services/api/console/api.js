// The API client: the operator's token (kept for this tab only, in sessionStorage), JSON in and
// out, and refusals turned into errors that say what was wrong and, for a form, which field.
import { t } from "./i18n.js";

const TOKEN_KEY = "vigil.console.token";

export const session = {
  get token() {
    return window.sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  /** status: the HTTP status (0: the server could not be reached); fields: field -> message. */
  constructor(status, message, fields = {}, body = null) {
    super(message);
    this.status = status;
    this.fields = fields;
    this.body = body;
  }

  static fromResponse(status, body) {
    const detail = body && body.detail;
    if (Array.isArray(detail)) {
      // FastAPI's 422: [{loc: ["body", "threshold"], msg: "..."}, ...]
      const fields = {};
      const messages = [];
      for (const item of detail) {
        const location = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body") : [];
        const field = location.find((part) => typeof part === "string") || "";
        const message = String(item.msg || "invalid");
        if (field && !(field in fields)) fields[field] = message;
        messages.push(field ? `${field}: ${message}` : message);
      }
      return new ApiError(status, messages.join("; "), fields, body);
    }
    const message = typeof detail === "string" ? detail : t("error.status", { status });
    return new ApiError(status, message, {}, body);
  }
}

/** Calls the API; resolves to the JSON body (null for 204), rejects with an ApiError. A 401
 * also tells the page (event "vigil:unauthorized"), which goes back to the sign-in form. */
export async function api(path, { method = "GET", params = {}, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, t("error.network"));
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("vigil:unauthorized"));
    throw ApiError.fromResponse(response.status, data);
  }
  return data;
}

/** The roles in order (services/common/auth.py). */
const RANK = { viewer: 0, operator: 1, admin: 2 };

export function atLeast(role, needed) {
  return (RANK[role] ?? -1) >= RANK[needed];
}
