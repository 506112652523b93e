// Terminal rendering of one log line at a time (design: ../shared/spec/web-ui.md section 2).
// Job output is untrusted: it only ever becomes text nodes and class names; the one attribute
// taken from it is an OSC 8 link target, and only for http(s). Nothing here parses HTML.

const TIMESTAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) [0-9a-f]{2}[OE]\+? ?/;
const SECTION = /^section_(start|end):(\d+):([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?\r\x1b\[0?K/;
const OSC_LIMIT = 4096;
const COLUMNS = 16384;  // a cursor move goes no further right: "CSI 999999999 C" must not build a billion cells
const LINK = /^https?:\/\/[^\s\x00-\x1f\x7f]+$/i;
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const DEFAULT = Object.freeze({});

function same(a, b) {
  return a === b || (a.fg === b.fg && a.bg === b.bg && a.b === b.b && a.f === b.f && a.i === b.i && a.u === b.u &&
    a.x === b.x && a.inv === b.inv && a.h === b.h && a.link === b.link && a.ctl === b.ctl);
}

function color256(n) {
  if (n < 16) return n;
  if (n < 232) {
    const v = [0, 95, 135, 175, 215, 255]; n -= 16;
    return `rgb(${v[Math.floor(n / 36)]},${v[Math.floor(n / 6) % 6]},${v[n % 6]})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

// A parameter as a number: digits only ("" is 0); anything else (NaN) is ignored.
// web/ansi.py mirrors this file: the job page's first rows are rendered by the server the same way.
function num(v) { return v === "" || v === undefined ? 0 : /^[0-9]+$/.test(v) ? Number(v) : NaN; }

function clamp(v) { v = num(v) || 0; return Math.max(0, Math.min(255, v)); }

// SGR parameters to a new style (styles are immutable; equal runs share nothing but values)
export function sgr(style, params) {
  const s = { ...style };
  const p = params.length ? params : ["0"];
  for (let k = 0; k < p.length; k++) {
    const n = num(p[k]);
    if (n === 0) { for (const key of Object.keys(s)) if (key !== "link") delete s[key]; }
    else if (n === 1) s.b = true;
    else if (n === 2) s.f = true;
    else if (n === 3) s.i = true;
    else if (n === 4) s.u = true;
    else if (n === 7) s.inv = true;
    else if (n === 8) s.h = true;
    else if (n === 9) s.x = true;
    else if (n === 21 || n === 22) { delete s.b; delete s.f; }
    else if (n === 23) delete s.i;
    else if (n === 24) delete s.u;
    else if (n === 27) delete s.inv;
    else if (n === 28) delete s.h;
    else if (n === 29) delete s.x;
    else if (n >= 30 && n <= 37) s.fg = n - 30;
    else if (n >= 90 && n <= 97) s.fg = n - 90 + 8;
    else if (n >= 40 && n <= 47) s.bg = n - 40;
    else if (n >= 100 && n <= 107) s.bg = n - 100 + 8;
    else if (n === 39) delete s.fg;
    else if (n === 49) delete s.bg;
    else if (n === 38 || n === 48) {
      const key = n === 38 ? "fg" : "bg";
      if (p[k + 1] === "5") { s[key] = color256(clamp(p[k + 2])); k += 2; }
      else if (p[k + 1] === "2") {
        // 38;2;r;g;b, or the colon form 38:2:<colourspace>:r:g:b (an empty or extra colourspace field)
        let at = k + 2;
        if (p.length - at >= 4 && p.colon) at++;
        s[key] = `rgb(${clamp(p[at])},${clamp(p[at + 1])},${clamp(p[at + 2])})`; k = at + 2;
      }
    }
  }
  return Object.keys(s).length ? s : DEFAULT;
}

export class Terminal {
  constructor() { this.style = DEFAULT; }

  clone() { const t = new Terminal(); t.style = this.style; return t; }

  // One raw line (no LF) to {ts, sections: [{kind, time, name, options}], runs: [{text, style}]}; the style carries to the next line.
  line(raw) {
    const out = { ts: null, sections: [], runs: [] };
    const stamp = TIMESTAMP.exec(raw);
    if (stamp) { out.ts = stamp[1]; raw = raw.slice(stamp[0].length); }
    // markers lead the line, several at once (the runner ends one section and starts the next)
    for (let mark = SECTION.exec(raw); mark; mark = SECTION.exec(raw)) {
      const options = Object.fromEntries((mark[4] || "").split(",").filter(Boolean).map((o) => o.split("=")));
      out.sections.push({ kind: mark[1], time: Number(mark[2]), name: mark[3], options });
      raw = raw.slice(mark[0].length);
    }
    if (!CONTROLS.test(raw)) {  // most lines: plain text in the current style, no cell buffer needed
      if (raw) out.runs.push({ text: raw, style: this.style });
      return out;
    }
    const cells = []; let col = 0;
    const put = (ch, style) => {
      while (cells.length < col) cells.push([" ", DEFAULT]);
      cells[col++] = [ch, style];
    };
    let i = 0;
    const n = raw.length;
    while (i < n) {
      const c = raw.charCodeAt(i);
      if (c === 0x1b) { i = this.escape(raw, i, cells, (v) => { col = v(col, cells); }); continue; }
      if (c === 0x0d) { col = 0; i++; continue; }
      if (c === 0x08) { col = Math.max(0, col - 1); i++; continue; }
      if (c === 0x09) { const stop = (Math.floor(col / 8) + 1) * 8; while (col < stop) put(" ", this.style); i++; continue; }
      if (c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)) { i++; continue; }
      const cp = raw.codePointAt(i);
      const ch = String.fromCodePoint(cp);
      i += ch.length;
      if (BIDI.test(ch)) { put(`⟨U+${cp.toString(16).toUpperCase().padStart(4, "0")}⟩`, { ...this.style, ctl: true }); continue; }
      put(ch, this.style);
    }
    let run = null;
    for (const [ch, style] of cells) {
      if (run && same(run.style, style)) run.text += ch;
      else { run = { text: ch, style }; out.runs.push(run); }
    }
    return out;
  }

  // One escape sequence at raw[i]; returns the index after it. ``move`` changes the cursor column.
  escape(raw, i, cells, move) {
    const next = raw[i + 1];
    if (next === "[") {
      let j = i + 2;
      while (j < raw.length && raw.charCodeAt(j) >= 0x20 && raw.charCodeAt(j) <= 0x3f) j++;
      const params = raw.slice(i + 2, j);
      while (j < raw.length && raw.charCodeAt(j) >= 0x20 && raw.charCodeAt(j) <= 0x2f) j++;
      if (j >= raw.length) return raw.length;
      const final = raw[j];
      const list = params.split(/[;:]/);
      if (params.includes(":")) list.colon = true;
      const count = Math.max(1, num(list[0]) || 0);
      if (final === "m" && !params.startsWith("?")) this.style = sgr(this.style, params === "" ? [] : list);
      else if (final === "K") {
        const mode = num(list[0]) || 0;
        move((col, cells) => {
          if (mode === 0) cells.length = Math.min(cells.length, col);
          else if (mode === 1) for (let k = 0; k <= col && k < cells.length; k++) cells[k] = [" ", DEFAULT];
          else cells.length = 0;
          return col;
        });
      } else if (final === "G") move(() => Math.min(count, COLUMNS) - 1);
      else if (final === "C") move((col) => Math.min(col + count, COLUMNS));
      else if (final === "D") move((col) => Math.max(0, col - count));
      return j + 1;
    }
    if (next === "]") {
      let j = i + 2; let end = -1; let after = -1;
      while (j < raw.length && j - i < OSC_LIMIT) {
        if (raw[j] === "\x07") { end = j; after = j + 1; break; }
        if (raw[j] === "\x1b" && raw[j + 1] === "\\") { end = j; after = j + 2; break; }
        j++;
      }
      if (end < 0) return j >= raw.length ? raw.length : j;  // unterminated: swallowed up to the limit
      const body = raw.slice(i + 2, end);
      if (body.startsWith("8;")) {
        const uri = body.slice(body.indexOf(";", 2) + 1);
        const link = LINK.test(uri) ? uri : undefined;
        this.style = { ...this.style, link };
        if (!link) delete this.style.link;
        if (!Object.keys(this.style).length) this.style = DEFAULT;  // a closed link: plain text again
      }
      return after;
    }
    if (next === "P" || next === "X" || next === "^" || next === "_") {
      const stop = raw.indexOf("\x1b\\", i + 2);
      return stop < 0 ? Math.min(raw.length, i + OSC_LIMIT) : stop + 2;
    }
    if (next === "(" || next === ")") return i + 3;
    return i + 2;
  }
}

// DOM nodes for a line's runs, appended to ``parent``; colours by class or CSSOM (CSP allows it).
export function paint(parent, runs) {
  for (const { text, style } of runs) {
    if (style === DEFAULT) { parent.append(text); continue; }
    const node = document.createElement(style.link ? "a" : "span");
    if (style.link) {
      node.href = style.link; node.rel = "noopener noreferrer nofollow"; node.target = "_blank"; node.title = style.link;
    }
    let fg = style.fg; let bg = style.bg;
    if (style.inv) [fg, bg] = [bg ?? 7, fg ?? 0];
    if (typeof fg === "number" && style.b && fg < 8) fg += 8;  // bold + basic colour: the bright one
    const classes = [];
    if (typeof fg === "number") classes.push(`fg${fg}`);
    if (typeof bg === "number") classes.push(`bg${bg}`);
    for (const key of ["b", "f", "i", "u", "x", "h"]) if (style[key]) classes.push(key);
    if (style.ctl) classes.push("ctl");
    if (classes.length) node.className = classes.join(" ");
    if (typeof fg === "string") node.style.color = fg;  // after the class: the server's rows get it in this order too
    if (typeof bg === "string") node.style.backgroundColor = bg;
    node.textContent = text;
    parent.append(node);
  }
}
