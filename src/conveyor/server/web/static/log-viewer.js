// The job log viewer: a bounded window of numbered lines over a log of any size.
//
// Opens at the tail the page carries (or at #L<n>), loads earlier/later whole-line byte ranges
// from the server on demand, and streams a live job from the SSE tail, resuming at the exact byte
// offset it has after any dropped connection. The DOM holds at most MAX_ROWS rows and MAX_NODES
// elements in them: following drops the oldest; a load above drops rows below; a reader elsewhere
// while the window is full pauses the stream until they come back to the end.
import { Terminal, paint } from "./ansi.js";
import { showStatus } from "./live.js";

performance.mark("conveyor:log:start");  // bench/ui: where a page's time goes

const page = JSON.parse(document.getElementById("page-data").textContent);
const info = page.log;
const base = `/-/projects/${info.project}/jobs/${info.job}/log`;
const MAX_ROWS = 600;  // rows in the DOM at most: 13 screens of 45
const MAX_NODES = 2000;  // elements in those rows at most: the page stays under 3,000 (spec §3.2)
const LOAD_LINES = 300;  // new rows per earlier/later load at most
const LONG = 100000;
const RANGE = 32 * 1024;  // bytes per earlier/later load
const TAIL = 24 * 1024;  // bytes a return to the end loads: a few screens, painted fast
const FINISHED = new Set(["success", "failed", "canceled", "skipped"]);
const $ = (id) => document.getElementById(id);
const pane = $("log-pane"); const lines = $("log-lines"); const status = $("log-status");
const decoder = new TextDecoder("utf-8");
const encoder = new TextEncoder();

const view = {
  rows: [],          // {no, raw, el, secs, bytes, nodes} in order
  nodes: 0,          // elements in rows' elements
  first: 1,          // number of rows[0]
  start: 0,          // byte offset of rows[0]
  end: 0,            // byte offset just past the loaded bytes (a partial last line included)
  size: info.size,   // the log's size as last known
  partial: "",       // the unfinished last line's text
  partialRow: null,
  generation: 0,     // bumped by every jump (load): ranges asked for an older window are dropped
  term: new Terminal(),
  open: [],          // sections open at the window's end
  sections: new Map(),
  follow: true,
  stream: null,
  ended: FINISHED.has(info.status),
  unseen: 0,
  hits: [], hit: -1,
  hasTime: false,
  loading: false,
  provisional: false, // rows shown before the log's line numbers are known
};
window.conveyorLog = view;  // for tests and benchmarks: read-only inspection

function byteLength(text) { return encoder.encode(text).length; }

function sectionDuration(sec) {
  if (sec.end == null || sec.options.hide_duration === "true") return "";
  const s = Math.max(0, sec.end - sec.start);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

// A line past LONG characters shows its last progress state (after its last CR) or its start,
// and says how much it left out: one 5 MB line must not stall the page.
function shown(raw) {
  if (raw.length <= LONG) return [raw, 0];
  const cr = raw.lastIndexOf("\r");
  const part = cr >= 0 && raw.length - cr - 1 <= LONG ? raw.slice(cr + 1) : raw.slice(0, LONG);
  return [part, raw.length - part.length];
}

// One row: built, or ``adopted`` (the element the server rendered for it, web/rows.py: the same
// DOM) and given its behaviour; the parsing and the section state are the same either way.
function makeRow(no, raw, term, adopted = null) {
  const [visible, hidden] = shown(raw);
  const parsed = term.line(visible);
  const el = adopted || document.createElement("div");
  let txt;
  if (adopted) txt = el.querySelector(".txt");
  else {
    el.className = "ln";
    const gutter = document.createElement("a");
    gutter.className = "no"; gutter.tabIndex = -1;
    if (!view.provisional) {  // numbers known (else the server is still counting this log's lines)
      el.id = `L${no}`; el.dataset.line = String(no); gutter.href = `#L${no}`; gutter.textContent = String(no);
    }
    el.append(gutter);
    if (parsed.ts) {
      const time = document.createElement("time");
      time.dateTime = parsed.ts; time.title = parsed.ts; time.textContent = parsed.ts.slice(11, 19);
      el.append(time);
    }
    txt = document.createElement("span");
    txt.className = "txt";
    paint(txt, parsed.runs);
    if (hidden) {
      const more = document.createElement("span");
      more.className = "more"; more.textContent = ` … ${hidden} more characters in this line (see Raw)`;
      txt.append(more);
    }
  }
  if (parsed.ts && !view.hasTime) { view.hasTime = true; $("btn-time").hidden = false; }
  for (const sec of parsed.sections) {
    if (sec.kind !== "end") continue;
    const at = view.open.map((s) => s.name).lastIndexOf(sec.name);
    if (at >= 0) {
      for (const s of view.open.splice(at)) {
        s.end = sec.time;
        const text = sectionDuration(s);
        if (s.dur.textContent !== text) s.dur.textContent = text;
      }
    }
  }
  const row = { no, raw, el, secs: view.open.slice(), bytes: 0, nodes: 0 };
  const sec = parsed.sections.filter((s) => s.kind === "start").pop();
  if (sec) {
    const s = { name: sec.name, start: sec.time, end: null, options: sec.options, head: row, rows: [],
      closed: sec.options.collapsed === "true" };
    let button; let dur;
    if (adopted) { button = el.querySelector(".fold"); dur = button.lastElementChild; }
    else {
      button = document.createElement("button");
      button.type = "button"; button.className = "fold"; button.setAttribute("aria-expanded", String(!s.closed));
      dur = document.createElement("span"); dur.className = "sec-dur";
      button.append(txt, dur);
      el.classList.add("sec-head"); if (s.closed) el.classList.add("closed");
      el.append(button);
    }
    button.addEventListener("click", () => toggle(s));
    s.button = button; s.dur = dur;
    view.open.push(s); view.sections.set(no, s);
    row.section = s;
  } else if (!adopted) {
    el.append(txt);
  }
  for (const s of row.secs) s.rows.push(row);
  if (!adopted && row.secs.some((s) => s.closed)) el.classList.add("folded");
  row.nodes = el.getElementsByTagName("*").length + 1;
  return row;
}

function toggle(sec, closed = !sec.closed) {
  sec.closed = closed;
  sec.button.setAttribute("aria-expanded", String(!closed));
  sec.head.el.classList.toggle("closed", closed);
  for (const row of sec.rows) row.el.classList.toggle("folded", row.secs.some((s) => s.closed));
}

// Lines of ``text`` (bytes ``start``..``end``, first line ``first``) cut to at most ``most`` rows
// kept at ``focus``: "end", "start" or a line number. A cut-off unfinished last line goes too.
function cutLines(text, first, start, end, focus, most = MAX_ROWS) {
  const all = text.split("\n");
  const partial = all[all.length - 1] !== "";
  if (!partial) all.pop();
  if (all.length <= most) return { text, first, start, end };
  let from = 0;
  if (focus === "end") from = all.length - most;
  else if (typeof focus === "number" && first) from = Math.min(Math.max(0, focus - first - most / 2), all.length - most);
  const to = from + most;
  const skipped = from ? byteLength(all.slice(0, from).join("\n")) + 1 : 0;
  const kept = all.slice(from, to).join("\n") + (partial && to >= all.length ? "" : "\n");
  return { text: kept, first: first && first + from, start: start + skipped,
    end: partial && to >= all.length ? end : start + skipped + byteLength(kept) };
}

// (Re)build the whole window from raw text: a range load or a jump. The rows kept, should the
// text hold more than the window does, are those at ``focus`` ("end", "start" or a line number).
// ``adopted``: the rows the server rendered of this text (web/rows.py), kept instead of built.
function renderWindow(text, first, start, end, size, focus = "end", fit = true, adopted = null) {
  ({ text, first, start, end } = cutLines(text, first, start, end, focus));
  view.rows = []; view.nodes = 0; view.sections = new Map(); view.open = []; view.term = new Terminal();
  view.partial = ""; view.partialRow = null;
  if (!adopted) lines.replaceChildren();
  view.first = first; view.start = start; view.end = start; view.size = Math.max(size, end);
  view.provisional = first === 0;
  appendText(text, end, adopted);
  view.end = end;
  $("log-earlier").hidden = start === 0;
  updateLater();
  if (fit && nodes() > MAX_NODES) fitWindow(focus);
}

function nodes() { return view.nodes + (view.partialRow ? view.partialRow.nodes : 0); }

// Too many rows or elements (styled lines): render again only the rows around ``focus`` that fit.
function fitWindow(focus) {
  const rows = view.rows;
  if (!rows.length) return;
  let at = focus === "end" ? rows.length - 1 : focus === "start" ? 0 : Math.min(Math.max(focus - view.first, 0), rows.length - 1);
  let a = at; let b = at + 1; let n = rows[at].nodes + (view.partialRow ? view.partialRow.nodes : 0);
  for (let grew = true; grew && b - a < MAX_ROWS;) {
    grew = false;
    if (b < rows.length && n + rows[b].nodes <= MAX_NODES) { n += rows[b++].nodes; grew = true; }
    if (a > 0 && b - a < MAX_ROWS && n + rows[a - 1].nodes <= MAX_NODES) { n += rows[--a].nodes; grew = true; }
  }
  const sum = (list) => list.reduce((total, row) => total + row.bytes, 0);
  const start = view.start + sum(rows.slice(0, a));
  const whole = b === rows.length;
  const text = rows.slice(a, b).map((r) => r.raw + "\n").join("") + (whole ? view.partial : "");
  const end = whole ? view.end : start + sum(rows.slice(a, b));
  if (!whole) { disconnect(); setFollow(false); }
  const anchor = rows[at].el; const offset = anchor.getBoundingClientRect().top; const id = anchor.id;
  renderWindow(text, view.first && view.first + a, start, end, view.size, focus, false);
  const again = id && document.getElementById(id);  // the row the reader was at stays where it was
  if (again) pane.scrollTop += again.getBoundingClientRect().top - offset;
}

function firstVisible() {
  const top = pane.getBoundingClientRect().top;
  const row = view.rows.find((r) => r.el.getBoundingClientRect().bottom > top);
  return row ? row.no : "end";
}

function updateLater() { $("log-later").hidden = view.end >= view.size || !!view.stream; }

// Append decoded text at the window's end; ``end`` is the byte offset after it. ``adopted``: the
// server's elements for these rows, in order (already in the page).
function appendText(text, end, adopted = null) {
  const pieces = (view.partial + text).split("\n");
  const partial = pieces.pop();
  if (view.partialRow) { view.partialRow.el.remove(); view.partialRow = null; }
  const fragment = document.createDocumentFragment();
  let no = view.first + view.rows.length;
  let k = 0;
  for (const raw of pieces) {
    const row = makeRow(no++, raw, view.term, adopted && adopted[k++]);
    row.bytes = byteLength(raw) + 1;
    view.rows.push(row); view.nodes += row.nodes; if (!adopted) fragment.append(row.el);
  }
  view.partial = partial;
  if (partial) {  // shown now, parsed again once its line feed comes: leave no trace in the state
    const open = view.open.slice();
    view.partialRow = makeRow(no, partial, view.term.clone(), adopted && adopted[k]);
    for (const s of view.partialRow.secs) s.rows.pop();
    view.open = open; view.sections.delete(no);
    if (!adopted) fragment.append(view.partialRow.el);
  }
  if (!adopted) lines.append(fragment);
  view.end = end;
  if (!view.loading && !view.follow) view.unseen += pieces.length;
  return pieces.length;
}

// Drop rows from the top while the window is over its bounds; ``reading``: only rows more than
// a screen above what the reader sees. Says whether the window is within its bounds.
function trimTop(reading = false) {
  const above = reading ? pane.getBoundingClientRect().top - pane.clientHeight : 0;  // no layout read when following
  let extra = 0; let dropped = 0;
  const over = () => view.rows.length - extra > MAX_ROWS || nodes() - dropped > MAX_NODES;
  while (extra < view.rows.length - 1 && over() && !(reading && view.rows[extra].el.getBoundingClientRect().bottom > above)) {
    dropped += view.rows[extra++].nodes;
  }
  for (const row of view.rows.splice(0, extra)) {
    row.el.remove(); view.start += row.bytes;
    for (const s of row.secs) if (s.rows[0] === row) s.rows.shift();
    if (row.section) view.sections.delete(row.no);
  }
  view.first += extra; view.nodes -= dropped;
  $("log-earlier").hidden = view.start === 0;
  return !over();
}

async function fetchWindow(url) {
  const response = await fetch(url, { headers: { Accept: "application/octet-stream" } });
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
  const h = (name) => Number(response.headers.get(name));
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { text: decoder.decode(bytes), start: h("X-Conveyor-Start"), end: h("X-Conveyor-End"),
    first: h("X-Conveyor-Line"), size: h("X-Conveyor-Size"), lines: h("X-Conveyor-Lines") };
}

function scrollToBottom() { pane.scrollTop = pane.scrollHeight; }

function atBottom() { return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 24; }

function setFollow(on) {
  view.follow = on;
  $("btn-follow").setAttribute("aria-pressed", String(on));
  if (on) { view.unseen = 0; $("new-lines").hidden = true; }
}

// ---- live stream -------------------------------------------------------------------------
function connect() {
  if (view.stream || view.ended) return;
  const source = new EventSource(`${base}/stream?offset=${view.end}`);
  view.stream = source;
  updateLater();
  let frame = 0; let pending = ""; let pendingEnd = view.end;
  const flush = () => {
    frame = 0;
    const text = pending; pending = "";
    appendText(text, pendingEnd);
    view.size = Math.max(view.size, pendingEnd);
    if (view.follow) { trimTop(); scrollToBottom(); }
    else if (!trimTop(true)) fitWindow(firstVisible());  // reading near the top of a full window: stop growing
    if (!view.follow && view.unseen) { $("new-lines").hidden = false; $("new-lines").textContent = `${view.unseen} new lines ↓`; }
    markPainted();
  };
  source.addEventListener("log", (event) => {
    const body = JSON.parse(event.data);
    pending += body.text !== undefined ? body.text : decoder.decode(Uint8Array.from(atob(body.base64), (c) => c.charCodeAt(0)));
    pendingEnd = Number(event.lastEventId);
    if (!frame) frame = requestAnimationFrame(flush);
  });
  source.addEventListener("end", (event) => {
    const body = JSON.parse(event.data);
    if (frame) { cancelAnimationFrame(frame); flush(); }
    view.ended = true; disconnect();
    status.textContent = `Job ${body.status}.`;
    showStatus(body.status);
  });
  source.onerror = () => {
    // Reconnect ourselves from the exact offset we hold (also after a server restart, when the
    // browser's own retry would give up on an error response).
    if (frame) { cancelAnimationFrame(frame); flush(); }
    disconnect();
    status.textContent = "Connection lost; reconnecting…";
    setTimeout(() => { status.textContent = ""; connect(); }, 1000);
  };
}

function disconnect() {
  if (view.stream) { view.stream.close(); view.stream = null; }
  updateLater();
}

// ---- navigation ---------------------------------------------------------------------------
// A jump (load) replaces the window; an earlier or later range still on its way was asked for the
// window it replaced and is dropped when it arrives (it would put the old lines back).
async function load(url, focus, where) {
  view.loading = true;
  const generation = ++view.generation;
  try {
    const w = await fetchWindow(url);
    if (generation !== view.generation) return;  // a later jump took over
    disconnect();
    renderWindow(w.text, w.first, w.start, w.end, w.size, focus);
    where();
  } catch (error) {
    status.textContent = `Could not load the log: ${error.message}`;
  } finally { view.loading = false; }
}

function showTail(w) {
  disconnect();
  renderWindow(w.text, w.first, w.start, w.end, w.size, "end");
  setFollow(true); scrollToBottom();
}

// The page's own rows (web/rows.py rendered w.text): kept, given their behaviour and the colours
// the CSP keeps out of HTML attributes (set through CSSOM, as paint() does), then followed from
// w.end. Rows that do not match the text (never expected) are rendered again instead.
function adoptTail(w) {
  pane.classList.remove("ssr");
  const adopted = Array.from(lines.children);
  const count = w.text.split("\n").length - (w.text.endsWith("\n") || !w.text ? 1 : 0);
  if (adopted.length !== count) { showTail(w); return; }
  for (const node of lines.querySelectorAll("[data-fg], [data-bg]")) {
    if (node.dataset.fg) node.style.color = node.dataset.fg;
    if (node.dataset.bg) node.style.backgroundColor = node.dataset.bg;
    node.removeAttribute("data-fg"); node.removeAttribute("data-bg");
  }
  renderWindow(w.text, w.first, w.start, w.end, w.size, "end", false, adopted);  // the server fitted them (fitWindow)
  setFollow(true); scrollToBottom();
}

async function openTail() {
  await load(`${base}/tail?size=${TAIL}`, "end", () => { setFollow(true); scrollToBottom(); });
  afterTail();
}

function afterTail() {
  // the stream, not the size a read saw, says what follows: a size can run ahead of readable bytes
  if (!view.ended) connect(); else if (view.end < view.size) loadLater();
  if (view.provisional) {  // shown before the server numbered the lines: ask again (that starts the count)
    status.textContent = "Counting lines…";
    let asked = false;
    const ask = async () => {
      if (asked || !view.provisional) return;
      asked = true; await openTail(); status.textContent = "";
    };
    // once these rows are painted (the count takes the server a CPU for a while), or after 0.4 s
    // in a tab that paints nothing (hidden)
    requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(ask, 0)));
    setTimeout(ask, 400);
  }
}

export async function goToLine(no, { highlight = true } = {}) {
  if (view.provisional || !(no >= view.first && no < view.first + view.rows.length)) {
    setFollow(false);
    await load(`${base}/line?n=${no}`, no, () => {});
  }
  const row = view.rows[no - view.first] || view.partialRow;
  if (!row) return;
  for (const s of row.secs) if (s.closed) toggle(s, false);
  setFollow(false);
  for (const old of lines.querySelectorAll(".ln.hl")) old.classList.remove("hl");
  if (highlight) row.el.classList.add("hl");
  row.el.scrollIntoView({ block: "center" });
}

async function loadEarlier() {
  if (view.loading || view.start === 0) return;
  view.loading = true;
  try {
    const generation = view.generation;
    const w = await fetchWindow(`${base}/range?start=${Math.max(0, view.start - RANGE)}&end=${view.start}`);
    if (generation !== view.generation) return;  // the window was replaced meanwhile
    const anchor = view.rows[0]; const offset = anchor ? anchor.el.getBoundingClientRect().top : 0;
    const above = cutLines(w.text, w.first, w.start, w.end, "end", LOAD_LINES);  // the lines nearest
    let text = above.text + view.rows.map((r) => r.raw + "\n").join("") + view.partial;
    let end = view.end;
    const total = above.text.split("\n").length - 1 + view.rows.length;
    if (total > MAX_ROWS) {  // keep the window bounded: drop lines from the bottom
      ({ text, end } = cutLines(text, above.first, above.start, end, "start"));
      disconnect(); setFollow(false);
    }
    renderWindow(text, above.first, above.start, end, Math.max(view.size, w.size), anchor ? anchor.no : "start");
    const again = anchor && document.getElementById(`L${anchor.no}`);
    if (again) pane.scrollTop += again.getBoundingClientRect().top - offset;
  } finally { view.loading = false; }
}

async function loadLater() {
  if (view.loading || view.end >= view.size) { if (!view.ended) connect(); return; }
  view.loading = true;
  const before = view.end;
  try {
    const partial = byteLength(view.partial);  // a long line comes in doubling steps
    const generation = view.generation;
    const w = await fetchWindow(`${base}/range?start=${view.end - partial}&end=${view.end + Math.max(RANGE, partial)}`);
    if (generation !== view.generation) return;  // the window was replaced meanwhile
    if (view.partialRow) { view.partialRow.el.remove(); view.partialRow = null; }
    view.partial = "";
    const below = cutLines(w.text, w.first, w.start, w.end, "start", LOAD_LINES);
    appendText(below.text, below.end);
    view.size = Math.max(view.size, w.size);
    trimTop();
    updateLater();
    if (view.end >= view.size && !view.ended) connect();
  } finally { view.loading = false; }
  // a scroll that arrived while this range loaded was dropped: still at the bottom with more
  // below (a long line grows in place, the pane does not), so load on
  if (view.end > before && atBottom() && view.end < view.size) loadLater();
}

// ---- search -------------------------------------------------------------------------------
async function search(query) {
  const count = $("search-count");
  if (!query) { view.hits = []; count.textContent = ""; return; }
  count.textContent = "Searching…";
  const response = await fetch(`${base}/search?q=${encodeURIComponent(query)}`);
  if (!response.ok) { count.textContent = "Search failed"; return; }
  const result = await response.json();
  view.hits = result.hits; view.hit = -1;
  count.textContent = `${result.total} result${result.total === 1 ? "" : "s"}`;
  if (view.hits.length) await nextHit(1);
}

async function nextHit(step) {
  if (!view.hits.length) return;
  view.hit = (view.hit + step + view.hits.length) % view.hits.length;
  const hit = view.hits[view.hit];
  $("search-count").textContent = `${view.hit + 1} of ${view.hits.length}${view.hits.length >= 1000 ? "+" : ""}`;
  await goToLine(hit.line);
  history.replaceState(null, "", `#L${hit.line}`);
}

// ---- next error ---------------------------------------------------------------------------
// Lines of the whole log that look like errors, asked of the server once per log size.
async function nextError(step) {
  if (!view.errors || view.errors.size !== view.size) {
    status.textContent = "Looking for errors…";
    const response = await fetch(`${base}/errors`);
    if (!response.ok) { status.textContent = "Could not look for errors"; return; }
    view.errors = { size: view.size, hits: (await response.json()).hits };
  }
  const hits = view.errors.hits;
  const lit = lines.querySelector(".ln.hl");
  const top = firstVisible(); const seen = top === "end" ? view.first + view.rows.length : top;
  const here = lit ? Number(lit.dataset.line) : step > 0 ? seen - 1 : seen;
  const hit = step > 0 ? hits.find((h) => h.line > here) : hits.findLast((h) => h.line < here);
  if (!hit) { status.textContent = hits.length ? `No ${step > 0 ? "later" : "earlier"} error.` : "No errors found."; return; }
  status.textContent = `Error ${hits.indexOf(hit) + 1} of ${hits.length}${hits.length >= 1000 ? "+" : ""}: line ${hit.line}`;
  await goToLine(hit.line);
  history.replaceState(null, "", `#L${hit.line}`);
}

// ---- wiring -------------------------------------------------------------------------------
// bench/ui reads these marks: "rows" when the first rows are in the DOM (built, or the server's
// adopted), "painted" two frames later.
function markPainted() {
  if (performance.getEntriesByName("conveyor:log:rows").length) return;
  if (!view.rows.length && !view.partialRow) return;
  performance.mark("conveyor:log:rows");
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("conveyor:log:painted")));
}

pane.addEventListener("scroll", () => {
  if (view.loading) return;
  if (atBottom()) {
    if (!view.follow && view.end >= view.size) setFollow(true);
    if (view.end < view.size || (!view.stream && !view.ended)) loadLater();
  } else if (view.follow && view.stream) setFollow(false);
  if (pane.scrollTop < 200 && view.start > 0) loadEarlier();
}, { passive: true });

$("log-earlier").addEventListener("click", loadEarlier);
$("log-later").addEventListener("click", loadLater);
$("btn-top").addEventListener("click", () => goToLine(1, { highlight: false }));
$("btn-error").addEventListener("click", (e) => nextError(e.shiftKey ? -1 : 1));
$("btn-bottom").addEventListener("click", toBottom);
$("new-lines").addEventListener("click", toBottom);
$("btn-follow").addEventListener("click", () => { setFollow(!view.follow); if (view.follow) toBottom(); });
$("btn-wrap").addEventListener("click", (e) => {
  const on = pane.classList.toggle("wrap"); e.currentTarget.setAttribute("aria-pressed", String(on));
});
$("btn-time").addEventListener("click", (e) => {
  const hidden = pane.classList.toggle("no-time"); e.currentTarget.setAttribute("aria-pressed", String(!hidden));
});
$("btn-fold").addEventListener("click", (e) => {
  const close = e.currentTarget.getAttribute("aria-pressed") !== "true";
  for (const s of view.sections.values()) toggle(s, close);
  e.currentTarget.setAttribute("aria-pressed", String(close));
  e.currentTarget.textContent = close ? "Expand all" : "Collapse all";
});
$("log-search").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("log-q").value;
  if (q === view.query && view.hits.length) nextHit(1); else { view.query = q; search(q); }
});
$("search-next").addEventListener("click", () => nextHit(1));
$("search-prev").addEventListener("click", () => nextHit(-1));
$("log-q").addEventListener("keydown", (e) => {
  if (e.key === "Escape") { $("log-q").value = ""; search(""); pane.focus(); }
  if (e.key === "Enter" && e.shiftKey) { e.preventDefault(); nextHit(-1); }
});

async function toBottom() {
  if (view.end < view.size || view.start > 0 && !view.stream && !view.ended) await openTail();
  setFollow(true); scrollToBottom();
  if (!view.stream && !view.ended) connect();
}

function jumpSection(step) {
  const heads = view.rows.filter((r) => r.section && !r.el.classList.contains("folded"));
  const top = pane.getBoundingClientRect().top;
  const after = heads.filter((r) => (step > 0 ? r.el.getBoundingClientRect().top > top + 2 : r.el.getBoundingClientRect().top < top - 2));
  const target = step > 0 ? after[0] : after[after.length - 1];
  if (target) { setFollow(false); target.el.scrollIntoView({ block: "start" }); target.section.button.focus(); }
}

pane.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "f") { e.preventDefault(); $("log-q").focus(); return; }
  if (e.target.closest("input")) return;
  if (e.key === "Home") { e.preventDefault(); goToLine(1, { highlight: false }); }
  else if (e.key === "End") { e.preventDefault(); toBottom(); }
  else if (e.key === "]") jumpSection(1);
  else if (e.key === "[") jumpSection(-1);
  else if (e.key === "e") nextError(1);
  else if (e.key === "E") nextError(-1);
  else if (e.key === "w") $("btn-wrap").click();
  else if (e.key === "t" && view.hasTime) $("btn-time").click();
});

document.addEventListener("conveyor:status", (e) => {
  if (!FINISHED.has(e.detail.status) && view.ended) { view.ended = false; }
});
window.addEventListener("hashchange", () => {
  const m = /^#L(\d+)$/.exec(location.hash);
  if (m) goToLine(Number(m[1]));
});

const deep = /^#L(\d+)$/.exec(location.hash);
if (!(info.tail && info.tail.rendered) || deep) pane.classList.remove("ssr");  // rows at the pane's foot until adopted
if (deep) goToLine(Number(deep[1])).then(markPainted);
else if (info.tail && info.tail.rendered) { adoptTail(info.tail); markPainted(); afterTail(); }  // rows in the page
else if (info.tail) { showTail(info.tail); markPainted(); afterTail(); }  // carried by the page: no request
else openTail().then(markPainted);
