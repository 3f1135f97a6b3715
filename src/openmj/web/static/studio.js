// The studio page: key, prompt with live validation, the current task (progress, images, its
// buttons, the Vary (Region) painter) and the gallery. Every rule is the server's: this page only
// shows what the API answers.
import * as api from "./api.js";
import { Painter } from "./painter.js";
import { Gallery } from "./gallery.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 800;
const FINAL = new Set(["SUCCESS", "FAILURE"]);
const PANS = { pan_left: "Pan left", pan_right: "Pan right", pan_up: "Pan up", pan_down: "Pan down" };

let tracking = 0; // bumped whenever another task is shown, so an old poll loop stops
let shown = null; // the task on screen (its Task JSON)

// ------------------------------------------------------------------ key
function showKeyState() {
  $("key-state").textContent = api.key.get() ? "key saved in this browser" : "paste the key openmj printed";
}
$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("key").value.trim();
  if (v) api.key.set(v);
  showKeyState();
  gallery.load(1);
});
$("key-forget").addEventListener("click", () => {
  api.key.clear();
  $("key").value = "";
  showKeyState();
});

// ------------------------------------------------------------------ prompt and its validation
function composed() {
  const parts = [$("prompt").value.trim()];
  if ($("aspect").value) parts.push(`--ar ${$("aspect").value}`);
  if ($("speed").value) parts.push(`--${$("speed").value}`);
  if ($("version").value) parts.push($("version").value);
  return parts.join(" ");
}

let checkSeq = 0;
async function validate() {
  const seq = ++checkSeq;
  const text = composed();
  if (!$("prompt").value.trim()) return setPromptError("");
  try {
    const out = await api.checkPrompt(text);
    if (seq !== checkSeq) return null; // the user typed on: a newer check is under way
    setPromptError(out.ok ? "" : out.error.message);
    return out.ok;
  } catch (err) {
    if (seq === checkSeq) setPromptError(err.message);
    return false;
  }
}
function setPromptError(message) {
  $("prompt-error").textContent = message;
  $("prompt").setAttribute("aria-invalid", message ? "true" : "false");
  return !message;
}
let debounce = 0;
for (const id of ["prompt", "aspect", "speed", "version"]) {
  $(id).addEventListener(id === "prompt" ? "input" : "change", () => {
    clearTimeout(debounce);
    debounce = setTimeout(validate, 250);
  });
}

$("imagine-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  clearTimeout(debounce); // this submit checks the prompt itself; a later check would hide its answer
  if (!api.key.get()) return setPromptError("Enter your API key first (top of the page).");
  if (!$("prompt").value.trim()) return setPromptError("Type a prompt first.");
  $("submit").disabled = true;
  try {
    if (!(await validate())) return;
    const out = await api.submit("imagine", { prompt: composed() });
    track(out.result);
  } catch (err) {
    setPromptError(err.message);
  } finally {
    $("submit").disabled = false;
  }
});

// ------------------------------------------------------------------ the task on screen
async function track(id) {
  const mine = ++tracking;
  $("task-error").textContent = "";
  while (mine === tracking) {
    let task;
    try {
      task = await api.fetchTask(id);
    } catch (err) {
      $("task-error").textContent = err.message;
      return;
    }
    if (mine !== tracking) return;
    if (!task) { $("task-error").textContent = `Task not found: ${id}`; return; }
    render(task);
    if (FINAL.has(task.status)) { gallery.load(); return; }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function percent(task) {
  if (task.status === "SUCCESS") return 100;
  const n = parseInt(task.progress, 10);
  return Number.isFinite(n) ? n : 0;
}

function render(task) {
  shown = task;
  const pct = percent(task);
  $("task-info").textContent = `${task.action} · ${task.status} · ${task.id} — ${task.prompt}`;
  $("progress").value = pct;
  $("progress-text").textContent = task.status === "FAILURE" ? "failed" : `${pct}%`;
  $("task-error").textContent = task.status === "FAILURE" ? task.failReason : "";
  const box = $("images");
  box.replaceChildren();
  if (task.status === "SUCCESS") {
    const clips = task.videoUrls || [];
    const media = clips.length ? clips : (task.imageUrls || []);
    box.className = media.length === 1 ? "images single" : "images";
    media.forEach((m, i) => box.append(figure(task, m, i + 1, clips.length > 0)));
  }
  const bar = $("buttons");
  bar.replaceChildren(...(task.buttons || []).map((b) => actionButton(task, b)));
}

function figure(task, media, n, isVideo) {
  const fig = document.createElement("figure");
  const el = document.createElement(isVideo ? "video" : "img");
  el.src = media.url;
  if (isVideo) { el.controls = true; el.poster = media.thumbnail || ""; el.setAttribute("aria-label", `Clip ${n}`); }
  else el.alt = `Image ${n} of task ${task.id}`;
  const cap = document.createElement("figcaption");
  const link = document.createElement("a");
  link.href = media.url;
  link.download = `${task.id}_${n}.${isVideo ? "mp4" : "png"}`;
  link.textContent = "Download";
  link.setAttribute("aria-label", `Download ${isVideo ? "clip" : "image"} ${n}`);
  cap.append(`#${n}`, link);
  fig.append(el, cap);
  return fig;
}

function buttonText(b) {
  const id = b.customId;
  // labels as words: Discord's emoji need a colour-emoji font, which many systems lack
  if (id.includes("::reroll::")) return ["Reroll", "Reroll: imagine the prompt again"];
  const pan = Object.keys(PANS).find((p) => id.includes(`::${p}::`));
  if (pan) return [PANS[pan], PANS[pan]];
  const m = /^([UV])(\d)$/.exec(b.label || "");
  if (m) return [b.label, `${b.label}: ${m[1] === "U" ? "upscale" : "vary"} image ${m[2]}`];
  const text = b.label || id;
  return [text, text];
}

function actionButton(task, b) {
  const el = document.createElement("button");
  const [text, label] = buttonText(b);
  el.type = "button";
  el.textContent = text;
  el.setAttribute("aria-label", label);
  el.dataset.customId = b.customId;
  el.addEventListener("click", () => act(task, b.customId, el));
  return el;
}

async function act(task, customId, el) {
  el.disabled = true;
  $("task-error").textContent = "";
  try {
    const body = { taskId: task.id, customId };
    if (customId.startsWith("MJ::JOB::variation::")) body.strong = $("strength").value === "strong";
    const out = await api.submit("action", body);
    if (out.code === 21) await openModal(task, customId, out);
    else track(out.result);
  } catch (err) {
    $("task-error").textContent = err.message;
  } finally {
    el.disabled = false;
  }
}

// ------------------------------------------------------------------ windows: Vary (Region), Custom Zoom
const painter = new Painter($("painter-canvas"), $("painter-image"), $("brush"), $("tool"));
let modal = null;

async function openModal(task, customId, out) {
  const region = customId.startsWith("MJ::Inpaint::");
  const index = region ? Number(customId.split("::")[2]) || 1 : 1;
  modal = { id: out.result, region };
  $("modal-title").textContent = region ? "Vary (Region)" : "Custom Zoom";
  $("painter-box").hidden = !region;
  $("modal-error").textContent = "";
  const prompt = (out.properties && out.properties.finalPrompt) || task.prompt || "";
  $("modal-prompt").value = region ? prompt : `${prompt} --zoom 2`;
  $("modal").showModal();
  if (region) await painter.load(task.imageUrls[index - 1].url);
}

$("mask-clear").addEventListener("click", () => painter.clear());
$("modal-cancel").addEventListener("click", async () => {
  const m = modal;
  modal = null;
  $("modal").close();
  if (m) await api.call(`/mj/task/${m.id}/cancel`, { method: "POST" }).catch(() => {});
});
$("modal-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!modal) return;
  if (modal.region && !painter.painted) {
    $("modal-error").textContent = "Paint the region to vary first.";
    return;
  }
  const body = { taskId: modal.id, prompt: $("modal-prompt").value };
  if (modal.region) body.maskBase64 = painter.maskBase64();
  $("modal-submit").disabled = true;
  try {
    const out = await api.submit("modal", body);
    modal = null;
    $("modal").close();
    track(out.result);
  } catch (err) {
    $("modal-error").textContent = err.message;
  } finally {
    $("modal-submit").disabled = false;
  }
});

// ------------------------------------------------------------------ gallery
const gallery = new Gallery({ open: (id) => track(id) });

$("key").value = api.key.get();
showKeyState();
if (api.key.get()) gallery.load(1);
document.documentElement.dataset.ready = "1";
window.studioReadyAt = performance.now();
window.studioShown = () => shown;
