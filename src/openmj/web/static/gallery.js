// The gallery: the key's tasks, newest first, paged and searched by prompt (the studio's helper
// route), shown through midjourney-proxy's list-by-condition, with each task's parent and children.
import * as api from "./api.js";

const $ = (id) => document.getElementById(id);
const SIZE = 12;

export class Gallery {
  constructor({ open }) {
    this.open = open;
    this.page = 1;
    this.pages = 1;
    $("search-form").addEventListener("submit", (e) => { e.preventDefault(); this.load(1); });
    $("refresh").addEventListener("click", () => this.load());
    $("prev").addEventListener("click", () => this.load(this.page - 1));
    $("next").addEventListener("click", () => this.load(this.page + 1));
  }

  async load(page = this.page) {
    if (!api.key.get()) return;
    this.page = Math.max(1, page);
    $("gallery-error").textContent = "";
    try {
      const list = await api.gallery($("search").value.trim(), this.page, SIZE);
      const rendered = await api.tasksByIds(list.tasks.map((t) => t.id));
      const byId = new Map(rendered.map((t) => [t.id, t]));
      this.pages = Math.max(1, Math.ceil(list.total / SIZE));
      $("gallery").replaceChildren(...list.tasks.map((t) => this.card(t, byId.get(t.id))));
      $("page-info").textContent = `page ${this.page} of ${this.pages} · ${list.total} tasks`;
      $("prev").disabled = this.page <= 1;
      $("next").disabled = this.page >= this.pages;
    } catch (err) {
      $("gallery-error").textContent = err.message;
    }
  }

  linkButton(text, label, id) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", () => this.open(id));
    return b;
  }

  card(item, task) {
    const li = document.createElement("li");
    li.dataset.taskId = item.id;
    const thumb = document.createElement("button");
    thumb.type = "button";
    thumb.className = "thumb";
    thumb.setAttribute("aria-label", `Open task ${item.id}: ${item.prompt || item.operation}`);
    thumb.addEventListener("click", () => this.open(item.id));
    if (task && task.imageUrl) {
      const img = document.createElement("img");
      img.src = task.imageUrl;
      img.alt = "";
      img.loading = "lazy";
      thumb.append(img);
    } else {
      thumb.textContent = task ? `${task.status} ${task.progress || ""}` : item.status;
    }
    const text = document.createElement("p");
    // an action's own prompt is empty: the rendered task shows its source's, as Discord does
    text.textContent = `${item.operation} · ${(task && task.prompt) || item.prompt}`;
    const links = document.createElement("div");
    links.className = "links";
    if (item.parentId) links.append(this.linkButton("↑ parent", `Open the parent task ${item.parentId}`, item.parentId));
    item.children.forEach((c, i) => links.append(this.linkButton(`↓ ${i + 1}`, `Open child task ${c}`, c)));
    if (task && task.imageUrl) {
      const a = document.createElement("a");
      a.href = task.imageUrl;
      a.download = `${item.id}.png`;
      a.textContent = "download";
      a.setAttribute("aria-label", `Download task ${item.id}`);
      links.append(" ", a);
    }
    li.append(thumb, text, links);
    return li;
  }
}
