// The studio's HTTP calls: the midjourney-proxy API (/mj/...) and the studio's read helpers.
// Errors are thrown with the message the API gave, so the page can show it as it is.

const KEY = "openmj.key";

export const key = {
  get: () => localStorage.getItem(KEY) || "",
  set: (v) => localStorage.setItem(KEY, v),
  clear: () => localStorage.removeItem(KEY),
};

export class ApiError extends Error {}

function messageOf(body, status) {
  if (body && typeof body === "object") {
    if (body.error && body.error.message) return body.error.message; // openmj's plain envelope
    if (body.description) return body.description; // midjourney-proxy's SubmitResultVO
    if (body.message) return body.message;
  }
  return `HTTP ${status}`;
}

export async function call(path, { method = "GET", body, auth = true } = {}) {
  const headers = {};
  if (auth && key.get()) headers.Authorization = `Bearer ${key.get()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(messageOf(data, res.status));
  return data;
}

// A midjourney-proxy submit: HTTP 200 with code 1 (accepted) or 21 (a window to fill in);
// every other code is a refusal whose description is the message.
export async function submit(path, body) {
  const out = await call(`/mj/submit/${path}`, { method: "POST", body });
  if (out.code !== 1 && out.code !== 21) throw new ApiError(out.description || `code ${out.code}`);
  return out;
}

export const fetchTask = (id) => call(`/mj/task/${encodeURIComponent(id)}/fetch`);
export const tasksByIds = (ids) =>
  ids.length ? call("/mj/task/list-by-condition", { method: "POST", body: { ids } }) : Promise.resolve([]);
export const checkPrompt = (prompt, botType) =>
  call("/studio/api/prompt/check", { method: "POST", body: { prompt, botType }, auth: false });
export const gallery = (q, page, size) =>
  call(`/studio/api/tasks?q=${encodeURIComponent(q)}&page=${page}&size=${size}`);
