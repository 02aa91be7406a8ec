// The reviewer's view: every answer to one task side by side, differences
// marked; accept one as gold, reject one with a comment (it returns to its
// annotator), or correct one and submit the correction as gold.

import { $, api, ask, el, imageUrl, say } from "./api.js";
import { Editor } from "./editor.js";
import { drawText, normaliseSchema } from "./text.js";

const view = { project: null, schema: null, item: null, chosen: 0, editor: null,
               correcting: false, startedAt: 0, busy: false };

export async function openReview(project, { showSection, home }) {
  view.project = project;
  view.home = home;
  view.schema = normaliseSchema(project);
  $("review-project").textContent = `Review: ${project.name}`;
  showSection("review");
  await nextReview();
}

// Shows the next task to review; returns "" or why there is none to show.
async function nextReview() {
  stopCorrecting();
  pageImages.clear();
  let why = "";
  try {
    view.item = await api("POST", `/api/v1/projects/${view.project.id}/reviews/next`);
    view.chosen = 0;
    say("");
  } catch (error) {
    view.item = null;
    why = error.code === "review_queue_empty" ? "No task is waiting for review." : error.message;
    say(why);
  }
  render();
  return why;
}

const spanKey = (s) => `${s.start}:${s.end}:${s.label}`;

function render() {
  const item = view.item;
  $("review-actions").hidden = !item;
  if (!item) {
    $("review-columns").replaceChildren();
    $("review-info").textContent = "";
    return;
  }
  const { task, annotations } = item;
  const offset = task.window_start ?? 0;
  const text = task.text ?? "";
  const count = (keys) => keys.reduce((m, k) => m.set(k, (m.get(k) || 0) + 1), new Map());
  const spanVotes = count(annotations.flatMap((a) => [...new Set(a.spans.map(spanKey))]));
  const classVotes = count(annotations.flatMap((a) => [...new Set(a.classes ?? [])]));
  const everyone = annotations.length;
  const colorOf = (name) => [...view.schema.spans, ...view.schema.classes, ...view.schema.boxes]
    .find((l) => l.name === name)?.color ?? "#888";

  $("review-columns").replaceChildren(...annotations.map((a, index) => {
    const spans = a.spans.map((s) => ({ start: s.start - offset, end: s.end - offset, label: s.label }));
    const differs = new Set(a.spans.map((s, i) => (spanVotes.get(spanKey(s)) < everyone ? i : -1))
      .filter((i) => i >= 0));
    const body = el("div", { class: "task-text", "aria-label": `Text as ${a.annotator_name} labelled it` });
    const missing = [...spanVotes.keys()].filter((k) => !a.spans.some((s) => spanKey(s) === k));
    // What other answers have and this one lacks, drawn dashed.
    const absent = missing.map((k) => {
      const [start, end, ...label] = k.split(":");
      return { start: Number(start) - offset, end: Number(end) - offset, label: label.join(":") };
    });
    drawText(body, text, { spans, differs, colorOf, suggestions: absent,
                           hint: (label) => [`${label} missing`, `Another answer has ${label} here`] });
    const classes = (a.classes ?? []).map((c) => el("li", {
      class: classVotes.get(c) < everyone ? "differs" : "",
      text: classVotes.get(c) < everyone ? `${c} (others differ)` : c }));
    const fields = Object.entries(a.fields ?? {}).map(([name, value]) =>
      el("div", {}, el("dt", { text: name }), el("dd", { text: value })));
    const summary = differs.size || missing.length
      ? `${differs.size} span(s) only some answers have; lacks ${missing.length} that others have.`
      : "Spans agree with every other answer.";
    const column = el("article", { class: index === view.chosen ? "answer chosen" : "answer",
                                   "aria-label": `Answer ${index + 1} by ${a.annotator_name}` },
      el("h3", {}, el("kbd", { text: String(index + 1) }), ` ${a.annotator_name || a.annotator}`),
      el("p", { class: "help", text: summary }),
      body,
      classes.length ? el("ul", { class: "class-list", "aria-label": "Classes" }, ...classes)
                     : el("p", { class: "help", text: view.schema.classes.length ? "No class chosen." : "" }),
      a.relations?.length ? el("p", { text: `${a.relations.length} relation(s)` }) : "",
      a.boxes?.length ? el("p", { text: `${a.boxes.length} box(es): ${a.boxes.map((b) => `${b.label} p.${b.page}`).join(", ")}` }) : "",
      fields.length ? el("dl", {}, ...fields) : "",
      pageView(task, a.boxes ?? [], colorOf),
      a.seconds ? el("p", { class: "help",
                            text: `${a.seconds < 10 ? a.seconds.toFixed(1) : Math.round(a.seconds)} s spent` })
                : "");
    column.addEventListener("click", () => { view.chosen = index; render(); });
    return column;
  }));
  $("review-info").textContent = `${annotations.length} answer(s); answer ${view.chosen + 1} is chosen.`;
}

// The first page image with this answer's boxes on it, for comparing boxes
// side by side; the correction view has every page.
function pageView(task, boxes, colorOf) {
  const first = task.pages?.[0];
  if (!first) return "";
  const image = el("img", { alt: `Redacted page ${first.page}` });
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("viewBox", "0 0 1 1");
  overlay.setAttribute("preserveAspectRatio", "none");
  overlay.setAttribute("class", "overlay");
  for (const box of boxes.filter((b) => b.page === first.page)) {
    const rect = document.createElementNS(SVG, "rect");
    for (const name of ["x", "y", "width", "height"]) rect.setAttribute(name, box[name]);
    rect.setAttribute("stroke", colorOf(box.label));
    rect.setAttribute("class", "box");
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    const title = document.createElementNS(SVG, "title");
    title.textContent = box.label;
    rect.append(title);
    overlay.append(rect);
  }
  const path = `/api/v1/tasks/${task.id}/pages/${first.page}`;
  if (!pageImages.has(path)) pageImages.set(path, imageUrl(path));
  pageImages.get(path).then((url) => { image.src = url; }, (error) => say(error.message));
  return el("div", { class: "page-figure review-page" }, image, overlay);
}

const SVG = "http://www.w3.org/2000/svg";
const pageImages = new Map();

function chosenAnnotation() { return view.item?.annotations[view.chosen]; }

async function decide(body, done) {
  if (view.busy) return;
  view.busy = true;
  try {
    await api("POST", `/api/v1/tasks/${view.item.task.id}/review`, body);
    const why = await nextReview();
    say(`${done} ${why || "Next task for review."}`);
  } catch (error) {
    say(error.message);
  } finally {
    view.busy = false;
  }
}

function accept() {
  const a = chosenAnnotation();
  if (!a) return;
  decide({ decision: "accept", annotation_id: a.id },
         `Accepted ${a.annotator_name || a.annotator}'s answer as gold.`);
}

async function reject() {
  const a = chosenAnnotation();
  if (!a) return;
  const comment = await ask(`Reject ${a.annotator_name || a.annotator}'s answer`,
                            "What should they change? (they see this comment)",
                            { submitLabel: "Reject" });
  if (comment === null) return;
  decide({ decision: "reject", annotation_id: a.id, comment },
         `Returned to ${a.annotator_name || a.annotator} with your comment.`);
}

function correct() {
  const a = chosenAnnotation();
  if (!a) return;
  view.correcting = true;
  view.editor = new Editor($("correction-editor"), view.schema, { textId: "correct-text" });
  view.editor.load(view.item.task, a);
  view.startedAt = performance.now();
  $("correction").hidden = false;
  $("review-actions").hidden = true;
  $("correction-title").textContent = `Correcting ${a.annotator_name || a.annotator}'s answer`;
  $("correct-text").focus();
  say("Edit the answer, then Enter submits it as gold; Esc cancels.");
}

function submitCorrection() {
  if (!view.correcting) return;
  const annotation = { ...view.editor.value(),
                       seconds: Math.round((performance.now() - view.startedAt) / 100) / 10 };
  decide({ decision: "correct", annotation }, "Correction saved as gold.");
}

function stopCorrecting() {
  view.correcting = false;
  view.editor = null;
  $("correction").hidden = true;
  $("correction-editor").replaceChildren();
}

export function reviewKey(event, typing) {
  const k = event.key;
  if (view.correcting) {
    if (k === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submitCorrection(); return; }
    if (typing) { if (k === "Escape") $("correct-text").focus(); return; }
    if ((k === "z" || k === "Z") && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      say(view.editor.undo() ? "Undone." : "Nothing to undo.");
      return;
    }
    if (view.editor.handleKey(event)) { event.preventDefault(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (k === "Enter" && event.target.tagName !== "BUTTON") { event.preventDefault(); submitCorrection(); }
    else if (k === "Escape") { stopCorrecting(); render(); say("Correction cancelled."); }
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^[1-9]$/.test(k) && view.item && Number(k) <= view.item.annotations.length) {
    view.chosen = Number(k) - 1;
    render();
  } else if (k === "a" || k === "A") { event.preventDefault(); accept(); }
  else if (k === "r" || k === "R") { event.preventDefault(); reject(); }
  else if (k === "c" || k === "C") { event.preventDefault(); correct(); }
  else if (k === "n" || k === "N") { event.preventDefault(); nextReview(); }
  else if (k === "Escape") view.home();
}

export function wireReview() {
  $("review-accept").addEventListener("click", accept);
  $("review-reject").addEventListener("click", reject);
  $("review-correct").addEventListener("click", correct);
  $("review-next").addEventListener("click", nextReview);
  $("review-back").addEventListener("click", () => view.home());
  $("correction-submit").addEventListener("click", submitCorrection);
  $("correction-cancel").addEventListener("click", () => { stopCorrecting(); render(); });
}
