// Pipeline graph: hovering or focusing a job lights it, what it needs and what needs it.
const cards = [...document.querySelectorAll(".job[data-name]")];
const byName = new Map(cards.map((c) => [c.dataset.name, c]));
const needs = new Map(cards.map((c) => [c.dataset.name, (c.dataset.needs || "").split(" ").filter((n) => byName.has(n))]));
const needed = new Map(cards.map((c) => [c.dataset.name, []]));
for (const [name, list] of needs) for (const n of list) needed.get(n).push(name);
const edges = [...document.querySelectorAll(".edges path")];

function walk(start, graph) {
  const seen = new Set(); const todo = [...(graph.get(start) || [])];
  while (todo.length) { const n = todo.pop(); if (!seen.has(n)) { seen.add(n); todo.push(...(graph.get(n) || [])); } }
  return seen;
}

function light(name) {
  const lit = new Set([name, ...walk(name, needs), ...walk(name, needed)]);
  const any = needs.get(name).length || needed.get(name).length;
  for (const card of cards) {
    card.classList.toggle("lit", any && lit.has(card.dataset.name));
    card.classList.toggle("dim", any && !lit.has(card.dataset.name));
  }
  for (const edge of edges) edge.classList.toggle("lit", lit.has(edge.dataset.source) && lit.has(edge.dataset.target));
}

function clear() {
  for (const card of cards) card.classList.remove("lit", "dim");
  for (const edge of edges) edge.classList.remove("lit");
}

for (const card of cards) {
  card.addEventListener("mouseenter", () => light(card.dataset.name));
  card.addEventListener("mouseleave", clear);
  card.addEventListener("focusin", () => light(card.dataset.name));
  card.addEventListener("focusout", clear);
}
