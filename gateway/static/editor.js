// One answer being made or corrected: spans, classes, relations, boxes and
// free-text fields, with undo. The annotator view and the reviewer's
// correction both use it; it owns the keys that edit, its host the keys that
// submit, skip and move between tasks.
//
// Suggestions (spans drawn dashed, classes outlined dashed) are accepted into
// the answer. In binary review one at a time is in focus, to accept or
// reject; once every one is decided the host's onSuggestionsDecided runs.

import { el, imageUrl, say } from "./api.js";
import { drawText, mouseSelection, snap, tokenize } from "./text.js";

export class Editor {
  constructor(root, schema, { textId, onSuggestionsDecided = null }) {
    this.root = root;
    this.schema = schema;
    this.onSuggestionsDecided = onSuggestionsDecided;
    this.task = null;
    this.images = new Map();
    this.build(textId);
  }

  // --- layout --------------------------------------------------------------

  build(textId) {
    const s = this.schema;
    this.legend = el("div", { class: "legend", role: "toolbar", "aria-label": "Span labels" },
      ...s.spans.map((label) => this.labelButton(label, () => this.addSpan(label.name))));
    this.classBox = el("div", {
      class: "classes",
      role: s.multi_label ? "group" : "radiogroup",
      "aria-label": s.multi_label ? "Classes (choose any)" : "Class (choose one)",
    });
    this.text = el("div", { id: textId, class: "task-text", tabindex: "0",
                            "aria-label": "Task text", "aria-describedby": `${textId}-spans` });
    this.spanList = el("ol", { id: `${textId}-spans`, class: "span-list", "aria-label": "Spans" });
    this.suggestionBar = el("p", { class: "suggestion-bar" });
    this.relationBox = el("section", { class: "relations", "aria-label": "Relations" });
    this.pageBox = el("section", { class: "pages", "aria-label": "Page image" });
    this.fieldBox = el("div", { class: "fields" });

    this.root.replaceChildren(
      s.spans.length ? this.legend : "",
      s.classes.length ? this.classBox : "",
      this.suggestionBar,
      this.text,
      this.spanList,
      s.relations.length ? this.relationBox : "",
      this.pageBox,
      s.fields.length ? this.fieldBox : "",
    );

    this.text.addEventListener("click", (event) => this.onTextClick(event));
    this.fieldInputs = new Map();
    for (const field of s.fields) {
      const id = `${textId}-field-${field.name}`;
      const input = el("textarea", { id, rows: "2", placeholder: field.description });
      input.addEventListener("input", () => { this.fields[field.name] = input.value; });
      this.fieldInputs.set(field.name, input);
      this.fieldBox.append(el("label", { for: id, text: field.name }), input);
    }
  }

  labelButton(label, action) {
    const button = el("button", { type: "button", color: label.color,
                                  title: label.description || label.name },
      label.hotkey ? el("kbd", { text: label.hotkey }) : "",
      label.hotkey ? " " : "",
      el("span", { class: "name", text: label.name }),
      label.description ? el("small", { text: label.description }) : "");
    button.addEventListener("click", () => { action(); this.text.focus(); });
    return button;
  }

  // --- loading -------------------------------------------------------------

  load(task, annotation) {
    // Page images are kept for the task on screen only.
    if (this.task?.id !== task.id) this.images.clear();
    this.task = task;
    this.textValue = task.text ?? "";
    this.offset = task.window_start ?? 0;
    // The tasks service sends the window's tokens (document offsets); the
    // page's own reading of the text stands in when a task has none.
    this.tokens = task.tokens?.length
      ? task.tokens.map(([start, end]) => ({ start: start - this.offset, end: end - this.offset }))
      : tokenize(this.textValue);
    const inWindow = (s) => s.start >= this.offset && s.end <= this.offset + this.textValue.length;
    const local = (s) => ({ ...s, start: s.start - this.offset, end: s.end - this.offset });
    this.spans = (annotation?.spans ?? []).filter(inWindow).map((s) => ({
      start: s.start - this.offset, end: s.end - this.offset, label: s.label }));
    this.classes = [...(annotation?.classes ?? [])];
    this.relations = (annotation?.relations ?? []).map((r) => ({ ...r }));
    this.boxes = (annotation?.boxes ?? []).map((b) => ({ ...b }));
    this.fields = { ...(annotation?.fields ?? {}) };
    this.accepted = annotation?.suggestions_accepted ?? 0;
    this.rejected = annotation?.suggestions_rejected ?? 0;
    this.suggestions = this.openSuggestions(task.suggestions ?? [], inWindow, local);
    this.total = this.suggestions.length;
    // A task back with an earlier answer (returned or reopened) is edited.
    this.binary = task.review_mode === "binary" && !annotation && this.total > 0;
    this.history = [];
    this.caret = null;
    this.chosen = null;
    this.relationFrom = null;
    this.chosenBox = null;
    this.boxLabel = this.schema.boxes[0]?.name ?? null;
    this.pages = task.pages ?? [];
    this.page = this.pages[0]?.page ?? null;
    for (const [name, input] of this.fieldInputs) input.value = this.fields[name] ?? "";
    this.buildPages();
    this.render();
  }

  // The suggestions still to decide, each once: classes first, then spans in
  // reading order; none the answer has already.
  openSuggestions(given, inWindow, local) {
    const classes = new Set(this.schema.classes.map((c) => c.name));
    const taken = new Set([...this.spans.map(key), ...this.classes.map(classKey)]);
    const open = [];
    for (const s of given) {
      const isClass = s.kind === "class";
      if (isClass ? !classes.has(s.label) : !inWindow(s)) continue;
      const suggestion = isClass ? { ...s } : local(s);
      const id = suggestionKey(suggestion);
      if (taken.has(id)) continue;
      taken.add(id);
      open.push(suggestion);
    }
    const rank = (s) => (s.kind === "class" ? -1 : s.start);
    return open.sort((x, y) => rank(x) - rank(y) || (x.end ?? 0) - (y.end ?? 0));
  }

  // --- edits and undo ------------------------------------------------------

  // Free-text fields keep their own undo (the browser's, while typing), so
  // undoing a span never takes back words typed since.
  snapshot() {
    return structuredClone({ spans: this.spans, classes: this.classes, relations: this.relations,
                             boxes: this.boxes, suggestions: this.suggestions,
                             accepted: this.accepted, rejected: this.rejected });
  }

  remember() { this.history.push(this.snapshot()); }

  undo() {
    const previous = this.history.pop();
    if (!previous) return false;
    Object.assign(this, previous);
    this.chosen = null;
    this.chosenBox = null;
    this.relationFrom = null;
    this.render();
    return true;
  }

  get isEdited() { return this.history.length > 0; }

  colorOf(name) {
    const s = this.schema;
    return [...s.spans, ...s.boxes, ...s.classes].find((l) => l.name === name)?.color ?? "#888";
  }

  pendingRange() {
    const fromMouse = mouseSelection(this.text);
    if (fromMouse) return snap(this.tokens, this.textValue, fromMouse.start, fromMouse.end);
    return this.caretRange();
  }

  caretRange() {
    if (!this.caret) return null;
    const [a, b] = [this.caret.anchor, this.caret.focus].sort((x, y) => x - y);
    return { start: this.tokens[a].start, end: this.tokens[b].end };
  }

  addSpan(label) {
    if (!this.task) return;
    const range = this.pendingRange();
    if ((!range || range.start >= range.end) && this.chosen !== null) {
      this.relabelSpan(this.chosen, label);
      return;
    }
    if (!range || range.start >= range.end) {
      say("Select some text first: drag with the mouse, or move with the arrow keys.");
      return;
    }
    const span = { ...range, label };
    if (this.spans.some((s) => key(s) === key(span))) return;
    this.remember();
    this.spans.push(span);
    // A span that matches a suggestion takes its place.
    this.suggestions = this.suggestions.filter((s) => key(s) !== key(span));
    this.chosen = this.spans.length - 1;
    this.caret = null;
    window.getSelection().removeAllRanges();
    this.render();
    say(`${label} added: "${this.textValue.slice(span.start, span.end)}".`);
  }

  // A label's key with a span chosen and nothing selected gives it that label.
  relabelSpan(index, label) {
    const span = this.spans[index];
    if (!span || span.label === label) return;
    if (this.spans.some((s) => key(s) === key({ ...span, label }))) return;
    this.remember();
    this.spans[index] = { ...span, label };
    this.render();
    say(`Now ${label}: "${this.textValue.slice(span.start, span.end)}".`);
  }

  removeSpan(index) {
    const removed = this.spans[index];
    if (!removed) return;
    this.remember();
    this.spans.splice(index, 1);
    this.relations = this.relations
      .filter((r) => r.from !== index && r.to !== index)
      .map((r) => ({ ...r, from: r.from > index ? r.from - 1 : r.from,
                     to: r.to > index ? r.to - 1 : r.to }));
    this.chosen = null;
    this.relationFrom = null;
    this.render();
    say(`${removed.label} removed.`);
  }

  toggleClass(name) {
    // Choosing a suggested class is accepting that suggestion.
    const suggested = this.suggestions.findIndex((s) => s.kind === "class" && s.label === name);
    if (suggested >= 0 && !this.classes.includes(name)) { this.acceptSuggestion(suggested); return; }
    this.remember();
    if (this.schema.multi_label) {
      this.classes = this.classes.includes(name)
        ? this.classes.filter((c) => c !== name) : [...this.classes, name];
    } else {
      this.classes = this.classes.includes(name) ? [] : [name];
    }
    this.render();
    say(this.classes.includes(name) ? `${name} chosen.` : `${name} cleared.`);
  }

  acceptSuggestion(index) {
    const suggestion = this.suggestions[index];
    if (!suggestion) { say("No suggestion left."); return; }
    this.remember();
    this.suggestions.splice(index, 1);
    if (this.take(suggestion)) this.accepted += 1;
    this.render();
    say(`Suggestion accepted: ${suggestion.label}.`);
    this.afterDecision();
  }

  acceptAllSuggestions() {
    if (!this.suggestions.length) { say("No suggestion left."); return; }
    this.remember();
    let count = 0;
    for (const suggestion of this.suggestions) if (this.take(suggestion)) count += 1;
    this.accepted += count;
    this.suggestions = [];
    this.render();
    say(`${count} suggestion(s) accepted.`);
    this.afterDecision();
  }

  // Binary review's "no": the suggestion leaves, counted as rejected.
  rejectSuggestion(index) {
    const suggestion = this.suggestions[index];
    if (!suggestion) { say("No suggestion left."); return; }
    this.remember();
    this.suggestions.splice(index, 1);
    this.rejected += 1;
    this.render();
    say(`Suggestion rejected: ${suggestion.label}.`);
    this.afterDecision();
  }

  // Puts a suggestion into the answer; false when the answer has it already.
  // A class replaces the chosen one unless the project is multi-label.
  take(suggestion) {
    if (suggestion.kind === "class") {
      if (this.classes.includes(suggestion.label)) return false;
      this.classes = this.schema.multi_label ? [...this.classes, suggestion.label]
                                             : [suggestion.label];
      return true;
    }
    if (this.spans.some((s) => key(s) === key(suggestion))) return false;
    this.spans.push({ start: suggestion.start, end: suggestion.end, label: suggestion.label });
    return true;
  }

  // In binary review, one suggestion at a time is in focus: the next one.
  get isReviewing() { return this.binary && this.suggestions.length > 0; }

  afterDecision() {
    if (this.binary && !this.suggestions.length) this.onSuggestionsDecided?.();
  }

  relate() {
    if (this.chosen === null) { say("Choose a span first: [ and ] step through the spans."); return; }
    if (this.relationFrom === null || this.relationFrom === this.chosen) {
      this.relationFrom = this.chosen;
      this.render();
      say("Relation started: choose the other span and press R again.");
      return;
    }
    const label = this.relationBox.querySelector("select")?.value || this.schema.relations[0]?.name;
    const relation = { from: this.relationFrom, to: this.chosen, label };
    this.remember();
    this.relations.push(relation);
    this.relationFrom = null;
    this.render();
    say(`Relation ${label} added.`);
  }

  removeRelation(index) {
    this.remember();
    this.relations.splice(index, 1);
    this.render();
  }

  moveCaret(step, extend) {
    if (!this.tokens.length) return;
    if (!this.caret) {
      const first = step > 0 ? 0 : this.tokens.length - 1;
      this.caret = { anchor: first, focus: first };
    } else {
      const focus = Math.max(0, Math.min(this.tokens.length - 1, this.caret.focus + step));
      this.caret = extend ? { anchor: this.caret.anchor, focus } : { anchor: focus, focus };
    }
    window.getSelection().removeAllRanges();
    this.render();
    const range = this.caretRange();
    this.text.querySelector(".caret")?.scrollIntoView({ block: "nearest" });
    say(`Selected: "${this.textValue.slice(range.start, range.end)}"`);
  }

  chooseSpan(step) {
    if (!this.spans.length) return;
    const order = this.spans.map((s, i) => ({ s, i }))
      .sort((x, y) => x.s.start - y.s.start || x.s.end - y.s.end).map(({ i }) => i);
    const at = order.indexOf(this.chosen);
    const next = at === -1 ? (step > 0 ? 0 : order.length - 1)
                           : (at + step + order.length) % order.length;
    this.chosen = order[next];
    this.render();
    const span = this.spans[this.chosen];
    say(`${span.label}: "${this.textValue.slice(span.start, span.end)}" (Delete removes it).`);
  }

  onTextClick(event) {
    if (!window.getSelection().isCollapsed) return;
    const mark = event.target.closest("mark");
    if (!mark) return;
    if (mark.dataset.suggestion !== undefined) {
      this.acceptSuggestion(Number(mark.dataset.suggestion));
    } else if (mark.dataset.span !== undefined) {
      this.chosen = Number(mark.dataset.span);
      this.render();
      say(`${this.spans[this.chosen].label} chosen (Delete removes it, R relates it).`);
    }
  }

  // --- keys ----------------------------------------------------------------

  // Returns true when the key was an edit and is used up.
  handleKey(event) {
    if (!this.task || event.ctrlKey || event.metaKey || event.altKey) return false;
    const onPage = this.figure?.contains(document.activeElement);
    const k = event.key;
    if (this.isReviewing) {
      if (k === "a") { this.acceptSuggestion(0); return true; }
      if (k === "A") { this.acceptAllSuggestions(); return true; }
      if (k === "x" || k === "X" || k === "Delete") { this.rejectSuggestion(0); return true; }
      // Label keys share the letters; none fires while a suggestion waits.
      if (this.isLabelKey(k)) {
        say("Decide the suggestion first: A accepts, X rejects. A label's button still labels.");
        return true;
      }
    }
    if (onPage) {
      const boxLabel = this.schema.boxes.find((l) => l.hotkey === k);
      if (boxLabel) { this.setBoxLabel(boxLabel.name); return true; }
      if (k === "Delete" || k === "Backspace") {
        if (this.chosenBox !== null) this.removeBox(this.chosenBox);
        else say("Choose a box first: click it, or step with [ and ].");
        return true;
      }
      if (k === "[" || k === "]") { this.chooseBox(k === "]" ? 1 : -1); return true; }
    }
    const spanLabel = this.schema.spans.find((l) => l.hotkey === k);
    if (spanLabel) { this.addSpan(spanLabel.name); return true; }
    const classLabel = this.schema.classes.find((l) => l.hotkey === k);
    if (classLabel) { this.toggleClass(classLabel.name); return true; }
    const relationLabel = this.schema.relations.find((l) => l.hotkey === k);
    if (relationLabel && this.relationFrom !== null) {
      const select = this.relationBox.querySelector("select");
      if (select) select.value = relationLabel.name;
      this.relate();
      return true;
    }
    switch (k) {
      case "ArrowRight": case "ArrowLeft":
        if (onPage) return false;
        this.moveCaret(k === "ArrowRight" ? 1 : -1, event.shiftKey);
        return true;
      case "]": this.chooseSpan(1); return true;
      case "[": this.chooseSpan(-1); return true;
      case "Delete": case "Backspace":
        if (this.chosen !== null) this.removeSpan(this.chosen);
        else if (this.spans.length) this.removeSpan(this.spans.length - 1);
        else return false;
        return true;
      case "a": this.acceptSuggestion(0); return true;
      case "A": this.acceptAllSuggestions(); return true;
      case "r": case "R":
        if (!this.schema.relations.length) return false;
        this.relate();
        return true;
      case "PageDown": case "PageUp":
        if (this.pages.length < 2) return false;
        this.turnPage(k === "PageDown" ? 1 : -1);
        return true;
      case "Escape":
        if (this.caret || this.chosen !== null || this.relationFrom !== null
            || !window.getSelection().isCollapsed || this.chosenBox !== null) {
          this.caret = null;
          this.chosen = null;
          this.relationFrom = null;
          this.chosenBox = null;
          window.getSelection().removeAllRanges();
          this.render();
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  isLabelKey(k) {
    const s = this.schema;
    return [...s.spans, ...s.classes, ...s.boxes, ...s.relations].some((l) => l.hotkey === k);
  }

  // --- page images and boxes -------------------------------------------------

  buildPages() {
    this.figure = null;
    if (!this.pages.length) { this.pageBox.replaceChildren(); this.pageBox.hidden = true; return; }
    this.pageBox.hidden = false;
    const hasBoxes = this.schema.boxes.length > 0;
    this.image = el("img", { alt: "Redacted page image", draggable: "false" });
    this.overlay = document.createElementNS(SVG, "svg");
    this.overlay.setAttribute("viewBox", "0 0 1 1");
    this.overlay.setAttribute("preserveAspectRatio", "none");
    this.overlay.setAttribute("class", "overlay");
    this.figure = el("div", { class: "page-figure", tabindex: "0",
                              "aria-label": hasBoxes
                                ? "Page image: drag to draw a box, a box label's key labels it"
                                : "Page image" },
      this.image, this.overlay);
    this.pageCaption = el("p", { class: "page-caption" });
    this.boxList = el("ol", { class: "box-list", "aria-label": "Boxes" });
    this.boxLegend = el("div", { class: "legend", role: "toolbar", "aria-label": "Box labels" },
      ...this.schema.boxes.map((label) => {
        const button = this.labelButton(label, () => {});
        button.addEventListener("click", () => {
          this.setBoxLabel(label.name);
          this.figure.focus({ preventScroll: true });
        });
        return button;
      }));
    const previous = el("button", { type: "button", text: "Previous page (PageUp)" });
    const next = el("button", { type: "button", text: "Next page (PageDown)" });
    previous.addEventListener("click", () => this.turnPage(-1));
    next.addEventListener("click", () => this.turnPage(1));
    this.pageBox.replaceChildren(
      el("h3", { text: "Page image" }),
      hasBoxes ? this.boxLegend : "",
      this.pages.length > 1 ? el("div", { class: "actions" }, previous, this.pageCaption, next)
                            : this.pageCaption,
      this.figure,
      hasBoxes ? this.boxList : "");
    if (hasBoxes) this.listenForDrawing();
    this.showPage();
  }

  async showPage() {
    const task = this.task;
    const page = this.page;
    this.pageCaption.textContent = `Page ${page} of ${this.pages.length}`;
    const path = `/api/v1/tasks/${task.id}/pages/${page}`;
    try {
      if (!this.images.has(path)) this.images.set(path, imageUrl(path));
      const url = await this.images.get(path);
      if (this.task === task && this.page === page) this.image.src = url;
    } catch (error) {
      this.images.delete(path);
      say(error.message);
    }
    this.renderBoxes();
  }

  turnPage(step) {
    const at = this.pages.findIndex((p) => p.page === this.page);
    const next = this.pages[at + step];
    if (!next) return;
    this.page = next.page;
    this.chosenBox = null;
    this.showPage();
  }

  listenForDrawing() {
    let start = null;
    let draft = null;
    const point = (event) => {
      const box = this.overlay.getBoundingClientRect();
      const clamp = (v) => Math.max(0, Math.min(1, v));
      return { x: clamp((event.clientX - box.left) / box.width),
               y: clamp((event.clientY - box.top) / box.height) };
    };
    this.overlay.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      // Read the point first, and focus without scrolling: a page that moves
      // under the pointer would shift the box.
      const at = point(event);
      this.figure.focus({ preventScroll: true });
      const hit = event.target.closest?.("rect[data-box]");
      if (hit) { this.chosenBox = Number(hit.dataset.box); this.renderBoxes(); return; }
      start = at;
      this.overlay.setPointerCapture(event.pointerId);
      draft = document.createElementNS(SVG, "rect");
      draft.setAttribute("class", "draft");
      draft.setAttribute("vector-effect", "non-scaling-stroke");
      this.overlay.append(draft);
    });
    this.overlay.addEventListener("pointermove", (event) => {
      if (!start) return;
      const now = point(event);
      setRect(draft, Math.min(start.x, now.x), Math.min(start.y, now.y),
              Math.abs(now.x - start.x), Math.abs(now.y - start.y));
    });
    this.overlay.addEventListener("pointerup", (event) => {
      if (!start) return;
      const now = point(event);
      const box = { page: this.page, x: Math.min(start.x, now.x), y: Math.min(start.y, now.y),
                    width: Math.abs(now.x - start.x), height: Math.abs(now.y - start.y),
                    label: this.boxLabel };
      start = null;
      draft.remove();
      if (box.width < 0.005 || box.height < 0.005) return;
      this.remember();
      this.boxes.push(box);
      this.chosenBox = this.boxes.length - 1;
      this.renderBoxes();
      say(`${box.label} box drawn on page ${box.page}; a box label's key changes its label.`);
    });
  }

  chooseBox(step) {
    const here = this.boxes.map((b, i) => (b.page === this.page ? i : -1)).filter((i) => i >= 0);
    if (!here.length) return;
    const at = here.indexOf(this.chosenBox);
    this.chosenBox = here[at === -1 ? (step > 0 ? 0 : here.length - 1)
                                    : (at + step + here.length) % here.length];
    this.renderBoxes();
    say(`${this.boxes[this.chosenBox].label} box chosen (Delete removes it).`);
  }

  setBoxLabel(name) {
    this.boxLabel = name;
    if (this.chosenBox !== null && this.boxes[this.chosenBox].label !== name) {
      this.remember();
      this.boxes[this.chosenBox].label = name;
      say(`Box labelled ${name}.`);
    } else {
      say(`New boxes get ${name}.`);
    }
    this.renderBoxes();
  }

  removeBox(index) {
    this.remember();
    const [removed] = this.boxes.splice(index, 1);
    this.chosenBox = null;
    this.renderBoxes();
    say(`${removed.label} box removed.`);
  }

  renderBoxes() {
    if (!this.figure || !this.overlay) return;
    const rects = [];
    this.boxes.forEach((box, index) => {
      if (box.page !== this.page) return;
      const rect = document.createElementNS(SVG, "rect");
      setRect(rect, box.x, box.y, box.width, box.height);
      rect.setAttribute("stroke", this.colorOf(box.label));
      rect.setAttribute("vector-effect", "non-scaling-stroke");
      rect.setAttribute("data-box", index);
      rect.setAttribute("class", index === this.chosenBox ? "box chosen" : "box");
      const title = document.createElementNS(SVG, "title");
      title.textContent = box.label;
      rect.append(title);
      rects.push(rect);
    });
    this.overlay.replaceChildren(...rects);
    if (!this.boxList) return;
    for (const button of this.boxLegend.querySelectorAll("button")) {
      const name = button.querySelector(".name").textContent;
      button.setAttribute("aria-pressed", String(name === this.boxLabel));
    }
    this.boxList.replaceChildren(...this.boxes.map((box, index) => {
      const remove = el("button", { type: "button", text: "Remove",
                                    "aria-label": `Remove ${box.label} box ${index + 1}` });
      remove.addEventListener("click", () => this.removeBox(index));
      const pct = (v) => `${Math.round(v * 100)}%`;
      return el("li", { class: index === this.chosenBox ? "chosen" : "", color: this.colorOf(box.label) },
        `${box.label}, page ${box.page}: ${pct(box.x)}, ${pct(box.y)}, ${pct(box.width)} × ${pct(box.height)} `,
        remove);
    }));
  }

  // --- drawing -----------------------------------------------------------------

  render() {
    if (!this.task) { this.text.replaceChildren(); this.spanList.replaceChildren(); return; }
    drawText(this.text, this.textValue, {
      spans: this.spans, suggestions: this.suggestions, selection: this.caretRange(),
      chosen: this.chosen, colorOf: (name) => this.colorOf(name),
      focused: this.isReviewing ? 0 : null,
    });
    if (this.relationFrom !== null) {
      for (const mark of this.text.querySelectorAll(`mark[data-span="${this.relationFrom}"]`)) {
        mark.classList.add("relation-from");
      }
    }
    this.spanList.replaceChildren(...this.spans.map((span, index) => {
      const remove = el("button", { type: "button", text: "Remove",
                                    "aria-label": `Remove ${span.label} "${this.textValue.slice(span.start, span.end)}"` });
      remove.addEventListener("click", () => this.removeSpan(index));
      return el("li", { class: index === this.chosen ? "chosen" : "", color: this.colorOf(span.label) },
        el("span", { class: "tag", text: span.label }),
        ` "${this.textValue.slice(span.start, span.end)}" [${span.start + this.offset}, ${span.end + this.offset}) `,
        remove);
    }));
    this.renderSuggestionBar();
    this.renderClasses();
    this.renderRelations();
    this.renderBoxes();
    if (this.isReviewing) this.text.querySelector("mark.focused")?.scrollIntoView({ block: "nearest" });
  }

  renderSuggestionBar() {
    const bar = this.suggestionBar;
    bar.hidden = this.suggestions.length === 0;
    bar.classList.toggle("reviewing", this.isReviewing);
    if (!this.isReviewing) {
      bar.replaceChildren(
        `${this.suggestions.length} suggestion(s), drawn dashed: `,
        el("kbd", { text: "A" }), " accepts the next, ", el("kbd", { text: "Shift" }), "+",
        el("kbd", { text: "A" }), " accepts all, a click accepts one. ",
        this.suggestionButton("Accept all suggestions", () => this.acceptAllSuggestions()));
      return;
    }
    const next = this.suggestions[0];
    const position = Math.max(this.total - this.suggestions.length + 1, 1);
    const what = next.kind === "class" ? `class ${next.label}`
      : `${next.label} "${this.textValue.slice(next.start, next.end)}"`;
    bar.replaceChildren(
      el("strong", { text: `Suggestion ${position} of ${Math.max(this.total, position)}: ${what}` }),
      " — ", el("kbd", { text: "a" }), " accept, ", el("kbd", { text: "x" }), " reject ",
      this.suggestionButton("Accept", () => this.acceptSuggestion(0)),
      this.suggestionButton("Reject", () => this.rejectSuggestion(0)));
  }

  suggestionButton(text, action) {
    const button = el("button", { type: "button", text });
    button.addEventListener("click", () => { action(); this.text.focus(); });
    return button;
  }

  renderClasses() {
    const single = !this.schema.multi_label;
    const focused = this.isReviewing ? this.suggestions[0] : null;
    this.classBox.replaceChildren(...this.schema.classes.map((label) => {
      const on = this.classes.includes(label.name);
      const button = this.labelButton(label, () => this.toggleClass(label.name));
      const suggested = this.suggestions.find((s) => s.kind === "class" && s.label === label.name);
      if (suggested) {
        button.classList.add("suggested");
        button.classList.toggle("focused", suggested === focused);
        button.title = `Suggested ${label.name}: a click or A accepts it`;
      }
      if (single) {
        button.setAttribute("role", "radio");
        button.setAttribute("aria-checked", String(on));
      } else {
        button.setAttribute("aria-pressed", String(on));
      }
      return button;
    }));
  }

  renderRelations() {
    if (!this.schema.relations.length) return;
    const previous = this.relationBox.querySelector("select")?.value;
    const select = el("select", { id: `${this.text.id}-relation` },
      ...this.schema.relations.map((l) => el("option", { value: l.name, text: l.hotkey ? `${l.name} (${l.hotkey})` : l.name })));
    if (previous) select.value = previous;
    const describe = (i) => {
      const s = this.spans[i];
      return s ? `${s.label} "${this.textValue.slice(s.start, s.end)}"` : "?";
    };
    this.relationBox.replaceChildren(
      el("h3", { text: "Relations" }),
      el("p", { class: "help" }, "Choose a span ([ ] or a click), press ", el("kbd", { text: "R" }),
         ", choose the other span, press ", el("kbd", { text: "R" }), " again."),
      el("label", { for: select.id, text: "Relation label" }), select,
      el("ol", { "aria-label": "Relations" }, ...this.relations.map((r, index) => {
        const remove = el("button", { type: "button", text: "Remove",
                                      "aria-label": `Remove relation ${index + 1}` });
        remove.addEventListener("click", () => this.removeRelation(index));
        return el("li", {}, `${describe(r.from)} → ${r.label} → ${describe(r.to)} `, remove);
      })));
  }

  // --- the answer ------------------------------------------------------------

  value() {
    return {
      spans: this.spans.map((s) => ({ start: s.start + this.offset, end: s.end + this.offset, label: s.label })),
      classes: [...this.classes],
      relations: this.relations.map((r) => ({ ...r })),
      boxes: this.boxes.map((b) => ({ ...b })),
      fields: Object.fromEntries(Object.entries(this.fields).filter(([, v]) => v !== "")),
      suggestions_accepted: this.accepted,
      suggestions_rejected: this.rejected,
    };
  }
}

const SVG = "http://www.w3.org/2000/svg";

function setRect(rect, x, y, width, height) {
  rect.setAttribute("x", x);
  rect.setAttribute("y", y);
  rect.setAttribute("width", width);
  rect.setAttribute("height", height);
}

function key(s) { return `${s.start}:${s.end}:${s.label}`; }

function classKey(name) { return `class:${name}`; }

function suggestionKey(s) { return s.kind === "class" ? classKey(s.label) : key(s); }

