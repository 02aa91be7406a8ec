// Task text with its spans, suggestions and keyboard selection drawn in, and
// the offsets of a mouse selection read back out of it.
//
// Offsets here are relative to the task text; the label name of each span is
// drawn by CSS from a data attribute, so it never enters the text nodes that
// selection offsets are counted over.

import { el } from "./api.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                 "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

export function normaliseSchema(project) {
  const schema = project.schema || {};
  const fill = (labels = [], from = 0) => labels.map((label, index) => {
    const named = typeof label === "string" ? { name: label } : label;
    return { name: named.name, description: named.description || "",
             color: named.color || PALETTE[(index + from) % PALETTE.length],
             hotkey: named.hotkey || "" };
  });
  return {
    spans: fill(schema.spans?.length ? schema.spans : project.labels),
    classes: fill(schema.classes, 3),
    multi_label: Boolean(schema.multi_label),
    relations: fill(schema.relations, 5),
    boxes: fill(schema.boxes, 1),
    fields: (schema.fields || []).map((f) => ({ name: f.name, description: f.description || "" })),
  };
}

// Words, numbers, redaction placeholders like [DATE] and single punctuation
// marks: the units a keyboard caret moves over and a selection snaps to.
const TOKEN = /\[[A-Z_]+\]|[\p{L}\p{N}]+(?:['’][\p{L}]+)*|[^\s\p{L}\p{N}]/gu;

export function tokenize(text) {
  return Array.from(text.matchAll(TOKEN), (m) => ({ start: m.index, end: m.index + m[0].length }));
}

// Widen a range to whole tokens and trim surrounding white space.
export function snap(tokens, text, start, end) {
  for (const token of tokens) {
    if (token.start < start && start < token.end) start = token.start;
    if (token.start < end && end < token.end) end = token.end;
  }
  while (start < end && /\s/.test(text[start])) start += 1;
  while (end > start && /\s/.test(text[end - 1])) end -= 1;
  return { start, end };
}

function offsetWithin(container, node, offset) {
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  let total = 0;
  for (let current = walker.nextNode(); current; current = walker.nextNode()) {
    if (current === node) return total + offset;
    total += current.textContent.length;
  }
  // The boundary is an element: count the text before its child at `offset`.
  const range = document.createRange();
  range.selectNodeContents(container);
  range.setEnd(node, offset);
  return range.toString().length;
}

export function mouseSelection(container) {
  const selection = window.getSelection();
  if (!selection.rangeCount || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  if (!container.contains(range.startContainer) || !container.contains(range.endContainer)) {
    return null;
  }
  const start = offsetWithin(container, range.startContainer, range.startOffset);
  const end = offsetWithin(container, range.endContainer, range.endOffset);
  return start < end ? { start, end } : null;
}

// Draw `text` into `container`. `marks` = {spans, suggestions, selection,
// chosen, differs (a Set of span indices that other answers lack), focused
// (the index of the suggestion in focus), colorOf}. Class suggestions, which
// have no span, are not drawn; the others keep their index.
export function drawText(container, text, marks) {
  const { spans = [], selection = null, chosen = null, focused = null,
          differs = new Set(), colorOf,
          hint = (label) => [`${label}?`, `Suggested ${label}: click or press A to accept`] } = marks;
  const suggestions = (marks.suggestions ?? []).map((s, index) => ({ s, index }))
    .filter(({ s }) => s.kind !== "class");
  const cuts = new Set([0, text.length]);
  for (const s of [...spans, ...suggestions.map(({ s }) => s)]) { cuts.add(s.start); cuts.add(s.end); }
  if (selection) { cuts.add(selection.start); cuts.add(selection.end); }
  const points = [...cuts].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b);

  const nodes = [];
  for (let i = 0; i + 1 < points.length; i += 1) {
    const [a, b] = [points[i], points[i + 1]];
    const piece = text.slice(a, b);
    const covering = spans.map((s, index) => ({ s, index }))
      .filter(({ s }) => s.start <= a && s.end >= b);
    const suggested = suggestions.filter(({ s }) => s.start <= a && s.end >= b);
    const selected = selection && selection.start <= a && selection.end >= b;
    if (!covering.length && !suggested.length && !selected) {
      nodes.push(document.createTextNode(piece));
      continue;
    }
    let node;
    if (covering.length) {
      // The shortest span lies on top and gives the colour.
      const top = covering.reduce((x, y) => (y.s.end - y.s.start < x.s.end - x.s.start ? y : x));
      node = el("mark", { class: "span", color: colorOf(top.s.label), "data-span": top.index,
                          title: covering.map(({ s }) => s.label).join(", ") }, piece);
      if (covering.some(({ index }) => index === chosen)) node.classList.add("chosen");
      if (covering.some(({ index }) => differs.has(index))) node.classList.add("differs");
      const ending = covering.filter(({ s }) => s.end === b).map(({ s, index }) =>
        (differs.has(index) ? `${s.label} ≠` : s.label));
      if (ending.length) node.dataset.tag = ending.join(" · ");
    } else if (suggested.length) {
      const top = suggested.find(({ index }) => index === focused) ?? suggested[0];
      node = el("mark", { class: "suggestion", color: colorOf(top.s.label),
                          "data-suggestion": top.index, title: hint(top.s.label)[1] }, piece);
      if (top.index === focused) node.classList.add("focused");
      const ending = suggested.filter(({ s }) => s.end === b).map(({ s }) => hint(s.label)[0]);
      if (ending.length) node.dataset.tag = ending.join(" · ");
    } else {
      node = el("span", {}, piece);
    }
    if (selected) node.classList.add("caret");
    nodes.push(node);
  }
  container.replaceChildren(...nodes);
}
