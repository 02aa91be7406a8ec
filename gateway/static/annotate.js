// The annotator's view: one task at a time, keyboard first. Enter submits and
// the next task follows at once; Ctrl+Z undoes the last edit, and once the
// task is submitted, reopens it; S skips with a reason. In a project with
// binary review, a task is submitted by itself once each of its suggestions
// is accepted (A) or rejected (X).

import { $, api, ask, el, say } from "./api.js";
import { Editor } from "./editor.js";
import { normaliseSchema } from "./text.js";

const view = {
  project: null,
  editor: null,
  task: null,
  shownAt: 0,
  submitted: [], // ids of tasks this annotator submitted in this sitting, newest last
  busy: false,
};

export async function openAnnotate(project, { showSection, home }) {
  view.project = project;
  view.home = home;
  view.submitted = [];
  const schema = normaliseSchema(project);
  $("project-name").textContent = project.name;
  const guidelines = (project.guidelines || "").trim();
  $("guidelines").hidden = !guidelines;
  $("guidelines-text").textContent = guidelines;
  $("guidelines").open = Boolean(guidelines);
  view.editor = new Editor($("editor"), schema,
                           { textId: "task-text", onSuggestionsDecided: submit });
  showSection("annotate");
  await nextTask();
}

// Shows the next task; returns "" or why there is none to show.
async function nextTask() {
  try {
    const task = await api("POST", `/api/v1/projects/${view.project.id}/tasks/next`);
    show(task, task.annotation);
    return "";
  } catch (error) {
    show(null);
    const why = error.code === "queue_empty" ? "No task is waiting in this project." : error.message;
    say(why);
    return why;
  }
}

function show(task, annotation) {
  view.task = task;
  view.shownAt = performance.now();
  const returned = task?.review_comment;
  $("review-comment").hidden = !returned;
  $("review-comment").replaceChildren(
    el("strong", { text: "Returned by the reviewer: " }), returned || "");
  $("task-info").textContent = task
    ? `Task ${task.id.slice(0, 8)} · characters ${task.window_start ?? 0}–${task.window_end ?? task.text_length}`
      + (task.text_length ? ` of ${task.text_length}` : "")
    : "";
  if (task) view.editor.load(task, annotation);
  else view.editor.load({ id: "", text: "", pages: [], suggestions: [] }, null);
  if (!task) view.editor.task = null;
  view.editor.render();
  for (const id of ["submit", "skip"]) $(id).disabled = !task;
  $("task-text").focus();
}

async function submit() {
  if (!view.task || view.busy) return;
  view.busy = true;
  const body = { ...view.editor.value(),
                 seconds: Math.round((performance.now() - view.shownAt) / 100) / 10 };
  try {
    await api("POST", `/api/v1/tasks/${view.task.id}/annotations`, body);
    view.submitted.push(view.task.id);
    const spans = body.spans.length;
    const why = await nextTask();
    say(`Submitted (${spans} span(s)). ${why || "Next task; Ctrl+Z reopens the last one."}`);
  } catch (error) {
    say(error.message);
  } finally {
    view.busy = false;
  }
}

async function undo() {
  if (view.editor.undo()) { say("Undone."); return; }
  const previous = view.submitted.at(-1);
  if (!previous) { say("Nothing to undo."); return; }
  try {
    const task = await api("POST", `/api/v1/tasks/${previous}/reopen`);
    view.submitted.pop();
    show(task, task.annotation);
    say("Your last answer is open again; Enter submits it anew.");
  } catch (error) {
    view.submitted.pop();
    say(error.code === "task_reviewed"
      ? "That task has been reviewed already and cannot be reopened." : error.message);
  }
}

async function skip() {
  if (!view.task) return;
  const reason = await ask("Skip this task", "Why skip it? (for the project manager)",
                           { submitLabel: "Skip" });
  if (reason === null) { $("task-text").focus(); return; }
  try {
    await api("POST", `/api/v1/tasks/${view.task.id}/skip`, { reason });
    const why = await nextTask();
    say(`Skipped. ${why || "Next task."}`);
  } catch (error) {
    say(error.message);
  }
}

export function annotateKey(event, typing) {
  const k = event.key;
  if (k === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); return; }
  if (typing) {
    if (k === "Escape") { event.preventDefault(); $("task-text").focus(); }
    return;
  }
  if ((k === "z" || k === "Z") && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    undo();
    return;
  }
  if (view.editor?.handleKey(event)) { event.preventDefault(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (k === "Enter" && event.target.tagName !== "BUTTON") { event.preventDefault(); submit(); }
  else if (k === "s" || k === "S") { event.preventDefault(); skip(); }
  else if (k === "Escape") view.home();
}

export function wireAnnotate() {
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("back").addEventListener("click", () => view.home());
}
