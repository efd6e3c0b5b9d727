// The portal's only way to the worker: the public API, with the token in the
// Authorization header (never in a URL).

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || (status ? `The service answered ${status}.` : "The service could not be reached."));
    this.status = status;
    this.code = error.code;
    this.fields = error.fields || null;
  }

  /** The route does not exist on this deployment (a feature still to come): hide it. */
  get unsupported() {
    return this.status === 405 || (this.status === 404 && /route/i.test(this.message));
  }
}

/**
 * `token()` gives the bearer token; `onUnauthorized()` runs on any 401 (an expired or
 * revoked link).
 */
export function createApi(token, onUnauthorized) {
  async function call(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      });
    } catch {
      throw new ApiError(0, null);
    }
    const text = await res.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    if (res.status === 401) onUnauthorized();
    if (!res.ok) throw new ApiError(res.status, json);
    return json;
  }
  const id = encodeURIComponent;
  return {
    catalog: () => call("GET", "/api/v1/webhooks/events"),
    listWebhooks: async () => {
      // Every page, whether the list pages by cursor (SPEC §8.3) or not.
      const all = [];
      let cursor = null;
      for (let i = 0; i < 50; i++) {
        const q = cursor ? `?limit=100&cursor=${id(cursor)}` : "";
        const page = await call("GET", `/api/v1/webhooks${q}`);
        all.push(...(page?.data ?? []));
        cursor = page?.next_cursor;
        if (!cursor) break;
      }
      return all;
    },
    getWebhook: (wid) => call("GET", `/api/v1/webhooks/${id(wid)}`),
    createWebhook: (body) => call("POST", "/api/v1/webhooks", body),
    updateWebhook: (wid, body) => call("PUT", `/api/v1/webhooks/${id(wid)}`, body),
    deleteWebhook: (wid) => call("DELETE", `/api/v1/webhooks/${id(wid)}`),
    rotateSecret: (wid, body) => call("POST", `/api/v1/webhooks/${id(wid)}/secret/rotate`, body),
    testWebhook: (wid, body) => call("POST", `/api/v1/webhooks/${id(wid)}/test`, body),
    recover: (wid, body) => call("POST", `/api/v1/webhooks/${id(wid)}/recover`, body),
    stats: (wid, window) => call("GET", `/api/v1/webhooks/${id(wid)}/stats?window=${id(window)}`),
    logs: (params) => call("GET", `/api/v1/webhooks/logs?${new URLSearchParams(params)}`),
    log: (lid) => call("GET", `/api/v1/webhooks/logs/${id(lid)}`),
    redeliver: (lid) => call("POST", `/api/v1/webhooks/logs/${id(lid)}/redeliver`),
    /** Paths this deployment describes (public, no token): which features to offer. */
    paths: async () => {
      try {
        const res = await fetch("/api/v1/openapi.json", { credentials: "omit" });
        return res.ok ? Object.keys((await res.json()).paths ?? {}) : null;
      } catch {
        return null;
      }
    },
  };
}
