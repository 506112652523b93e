// Live status without a reload: poll the page's status.json every 2 s while the tab is visible.
// A poll, not a second SSE stream: one indexed read per tick is cheap, it survives server restarts
// without reconnect logic, and it leaves the browser's few HTTP/1.1 connections to the log stream.
const data = JSON.parse(document.getElementById("page-data").textContent);
const INTERVAL = 2000;
const FINISHED = new Set(["success", "failed", "canceled", "skipped"]);
const favicon = document.getElementById("favicon");
const iconBase = favicon.href.replace(/favicon-[a-z_]+\.svg.*$/, "");

export function showStatus(status, label) {
  document.title = `${status} · ${data.title} · Conveyor`;
  favicon.href = `${iconBase}favicon-${status}.svg`;
  const badge = document.querySelector("#status .badge");
  if (badge) setBadge(badge, status, label || status);
  document.body.dataset.status = status;
  for (const node of document.querySelectorAll("[data-show-when]")) node.hidden = !node.dataset.showWhen.split(" ").includes(status);
}

export function setBadge(badge, status, label) {
  badge.className = `badge s-${status}`;
  badge.dataset.status = status;
  badge.querySelector("use").setAttribute("href", `#i-${status}`);
  badge.querySelector(".label").textContent = label;
}

async function poll() {
  if (document.hidden) return;
  let state;
  try {
    const response = await fetch(data.poll, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    state = await response.json();
  } catch { return; }
  if (state.status !== data.status) {
    data.status = state.status;
    showStatus(state.status, state.label);
    document.dispatchEvent(new CustomEvent("conveyor:status", { detail: state }));
  }
  const duration = document.getElementById("duration");
  if (duration && state.duration !== undefined) duration.textContent = state.duration;
  for (const [id, job] of Object.entries(state.jobs || {})) {
    const card = document.querySelector(`.job[data-job-id="${id}"]`);
    if (!card) { if (data.kind === "pipeline") location.reload(); continue; }  // a new attempt: redraw
    const badge = card.querySelector(".badge");
    if (badge.dataset.status !== job.status) setBadge(badge, job.status, job.label);
    for (const node of card.querySelectorAll("[data-show-when]")) node.hidden = !node.dataset.showWhen.split(" ").includes(job.status);
    card.querySelector(".dur").textContent = job.duration;
  }
}

showStatus(data.status);
setInterval(poll, INTERVAL);
document.addEventListener("visibilitychange", poll);
