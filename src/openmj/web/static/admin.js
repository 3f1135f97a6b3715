// The admin page: keys, their ledgers and tasks, the queue, providers and prices, all from
// /admin/api with the operator's token (kept for this browser tab only).
const $ = (id) => document.getElementById(id);
const TOKEN = "openmj.admin";
const token = () => sessionStorage.getItem(TOKEN) || "";

async function admin(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/admin/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${res.status}`);
  return data;
}

function cell(content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content ?? "–";
  return td;
}
function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", () => guard(onClick));
  return b;
}
function input(label, value = "", type = "text") {
  const el = document.createElement("input");
  el.type = type;
  el.value = value;
  el.setAttribute("aria-label", label);
  return el;
}
function table(headers, rows) {
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  headers.forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
  const body = t.createTBody();
  rows.forEach((r) => { const tr = body.insertRow(); r.forEach((c) => tr.append(cell(c))); });
  return t;
}
const when = (ts) => (ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) : "–");
const num = (el) => (el.value.trim() === "" ? null : Number(el.value));

async function guard(fn) {
  $("admin-error").textContent = "";
  try { await fn(); } catch (err) { $("admin-error").textContent = err.message; }
}

function keyRow(k) {
  const tr = document.createElement("tr");
  tr.dataset.keyId = k.id;
  const group = input(`Group of ${k.id}`, k.group);
  const models = input(`Models of ${k.id}`, (k.models || []).join(","));
  const rpm = input(`Requests per minute of ${k.id}`, k.rpm ?? "", "number");
  const conc = input(`Concurrency of ${k.id}`, k.concurrency ?? "", "number");
  const amount = input(`Credits to grant to ${k.id}`, "100", "number");
  const actions = document.createElement("div");
  actions.className = "buttons";
  actions.append(
    button("Save", `Save the limits of ${k.id}`, async () => {
      const list = models.value.split(",").map((m) => m.trim()).filter(Boolean);
      await admin(`/keys/${k.id}`, { method: "PATCH", body: {
        group: group.value.trim(), models: list.length ? list : null, rpm: num(rpm), concurrency: num(conc) } });
      await loadKeys();
    }),
    amount,
    button("Grant", `Grant credits to ${k.id}`, async () => {
      await admin(`/keys/${k.id}/grant`, { method: "POST", body: { amount: Number(amount.value) } });
      await loadKeys();
    }),
    button(k.disabled ? "Enable" : "Disable", `${k.disabled ? "Enable" : "Disable"} ${k.id}`, async () => {
      await admin(`/keys/${k.id}`, { method: "PATCH", body: { disabled: !k.disabled } });
      await loadKeys();
    }),
    button("Ledger", `Show the ledger of ${k.id}`, () => showLedger(k.id)),
    button("Tasks", `Show the tasks of ${k.id}`, () => showTasks(k.id)),
  );
  [`${k.id} (${k.prefix}…)`, k.name, group, String(k.credits), models, rpm, conc,
    k.disabled ? "disabled" : "active", actions].forEach((c) => tr.append(cell(c)));
  tr.children[3].className = "credits";
  return tr;
}

async function loadKeys() {
  const out = await admin("/keys");
  $("keys").replaceChildren(...out.keys.map(keyRow));
}

async function showLedger(id) {
  const out = await admin(`/keys/${id}/ledger`);
  $("detail-info").textContent = `Ledger of ${id}: balance ${out.credits}`;
  $("detail").replaceChildren(table(["When", "Kind", "Amount", "Task"],
    out.entries.map((e) => [when(e.created_at), e.kind, String(e.amount), e.task_id || "–"])));
}

async function showTasks(id) {
  const out = await admin(`/keys/${id}/tasks`);
  $("detail-info").textContent = `Tasks of ${id}: ${out.total} (newest 20)`;
  $("detail").replaceChildren(taskTable(out.tasks));
}

const taskTable = (tasks) => table(["Created", "Task", "Operation", "Status", "Prompt", "Credits", "Reason"],
  tasks.map((t) => [when(t.createdAt), t.id, t.operation, t.status, t.prompt, String(t.credits),
    t.errorMessage || t.errorCode || ""]));

async function loadQueue() {
  const q = await admin("/queue");
  const summary = document.createElement("p");
  summary.textContent = `depth ${q.depth} · running ${q.running} · failed ${q.failedTotal}`;
  const byPriority = table(["Priority", "Waiting"], Object.entries(q.pendingByPriority));
  const heading = (text) => { const h = document.createElement("h3"); h.textContent = text; return h; };
  $("queue").replaceChildren(summary, byPriority, heading("Running"), taskTable(q.runningTasks),
    heading("Latest failures"), taskTable(q.failed));
}

// "op:speed[:model]" → one row per operation (and model), one column per speed or resolution
function priceMatrix(prices) {
  const rows = new Map();
  const cols = [];
  for (const [k, v] of Object.entries(prices)) {
    const [op, qual = "any", model] = k.split(":");
    const row = model ? `${op} (${model})` : op;
    if (!rows.has(row)) rows.set(row, {});
    rows.get(row)[qual] = v;
    if (!cols.includes(qual)) cols.push(qual);
  }
  return table(["Operation", ...cols], [...rows].map(([row, byQual]) => [row, ...cols.map((c) => (c in byQual ? String(byQual[c]) : ""))]));
}

async function loadPrices() {
  const p = await admin("/prices");
  $("prices").replaceChildren(priceMatrix(p.prices),
    table(["Group", "Multiplier"], Object.entries(p.groups).map(([k, v]) => [k, String(v)])));
  const r = await admin("/providers");
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = r.relay ? "Relay providers (keys never shown):" : "No relay: every task runs on this deployment's model.";
  $("providers").replaceChildren(note, ...(r.relay ? [table(["Name", "Dialect", "Base URL", "Priority", "Weight", "Key", "Cooling down"],
    r.providers.map((x) => [x.name, x.dialect, x.baseUrl || "–", String(x.priority), String(x.weight), x.key,
      x.coolingUntil ? `until ${when(x.coolingUntil)} (${x.coolingReason})` : "–"]))] : []));
}

$("new-key").addEventListener("submit", (e) => {
  e.preventDefault();
  guard(async () => {
    const list = $("nk-models").value.split(",").map((m) => m.trim()).filter(Boolean);
    const out = await admin("/keys", { method: "POST", body: {
      name: $("nk-name").value, credits: num($("nk-credits")), group: $("nk-group").value.trim() || "default",
      models: list.length ? list : null, rpm: num($("nk-rpm")), concurrency: num($("nk-conc")) } });
    const box = document.createElement("p");
    box.className = "secret";
    box.id = "secret";
    box.textContent = out.secret;
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = `Created ${out.key.id}. The secret is shown once:`;
    $("new-secret").replaceChildren(note, box);
    await loadKeys();
  });
});

async function loadAll() {
  await loadKeys();
  await loadQueue();
  await loadPrices();
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN, $("token").value.trim());
  guard(loadAll);
});
$("token-forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  $("token").value = "";
  ["keys", "detail", "queue", "prices", "providers", "new-secret"].forEach((id) => $(id).replaceChildren());
});
$("queue-refresh").addEventListener("click", () => guard(loadQueue));

guard(loadAll); // without a token this shows the API's refusal
document.documentElement.dataset.ready = "1";
window.studioReadyAt = performance.now(); // bench/bench_studio.py reads it
