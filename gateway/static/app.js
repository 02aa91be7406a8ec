// The annotator's page: sign in, pick a project, label spans with the keyboard.
// Everything comes from the gateway itself; nothing is loaded from elsewhere.

const state = { token: sessionStorage.getItem("strongroom.token"), project: null,
                task: null, spans: [] };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${state.token}`,
               ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || `Request failed (${response.status}).`);
    error.status = response.status;
    error.code = data.code;
    throw error;
  }
  return data;
}

function say(message) { $("status").textContent = message; }

function show(section) {
  for (const id of ["sign-in", "projects", "annotate"]) $(id).hidden = id !== section;
  $("sign-out").hidden = section === "sign-in";
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/oidc/token", { method: "POST", body: new URLSearchParams(form) });
  const data = await response.json();
  if (!response.ok) { say(data.detail); return; }
  state.token = data.access_token;
  sessionStorage.setItem("strongroom.token", state.token);
  event.target.reset();
  await loadProjects();
}

function signOut() {
  state.token = null;
  sessionStorage.removeItem("strongroom.token");
  $("who").textContent = "";
  show("sign-in");
  say("Signed out.");
}

async function loadProjects() {
  try {
    const me = await api("GET", "/api/v1/me");
    $("who").textContent = `${me.username} (${me.roles.join(", ")})`;
    const { projects } = await api("GET", "/api/v1/projects?limit=500");
    const list = $("project-list");
    list.replaceChildren(...projects.map((project) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = project.name;
      button.addEventListener("click", () => openProject(project));
      item.append(button);
      return item;
    }));
    $("no-projects").hidden = projects.length > 0;
    show("projects");
    say("");
    list.querySelector("button")?.focus();
  } catch (error) {
    if (error.status === 401) { signOut(); return; }
    say(error.message);
  }
}

async function openProject(project) {
  state.project = project;
  $("project-name").textContent = project.name;
  $("labels").replaceChildren(...project.labels.map((label) => {
    const button = document.createElement("button");
    button.type = "button";
    button.style.setProperty("--label-color", label.color);
    const key = document.createElement("kbd");
    key.textContent = label.hotkey;
    button.append(key, label.name);
    button.title = label.description || label.name;
    button.addEventListener("click", () => addSpan(label.name));
    return button;
  }));
  show("annotate");
  await nextTask();
}

async function nextTask() {
  state.task = null;
  state.spans = [];
  render();
  try {
    state.task = await api("POST", `/api/v1/projects/${state.project.id}/tasks/next`);
    say("");
  } catch (error) {
    say(error.code === "queue_empty" ? "No task is waiting in this project." : error.message);
  }
  render();
  $("task-text").focus();
}

function selectedRange() {
  const container = $("task-text");
  const selection = window.getSelection();
  if (!selection.rangeCount) return null;
  const range = selection.getRangeAt(0);
  if (!container.contains(range.startContainer) || !container.contains(range.endContainer)) {
    return null;
  }
  const before = document.createRange();
  before.selectNodeContents(container);
  before.setEnd(range.startContainer, range.startOffset);
  const start = before.toString().length;
  const end = start + range.toString().length;
  return start < end ? { start, end } : null;
}

function addSpan(label) {
  if (!state.task) return;
  const range = selectedRange();
  if (!range) { say("Select some text first."); return; }
  if (state.spans.some((s) => s.start === range.start && s.end === range.end && s.label === label)) {
    return;
  }
  state.spans.push({ ...range, label });
  window.getSelection().removeAllRanges();
  render();
  say(`${label} added.`);
}

function colorOf(label) {
  return state.project.labels.find((l) => l.name === label)?.color ?? "#888";
}

function render() {
  const container = $("task-text");
  const text = state.task?.text ?? "";
  const nodes = [];
  let cursor = 0;
  for (const span of [...state.spans].sort((a, b) => a.start - b.start)) {
    if (span.start < cursor) continue;  // overlapping spans show in the list only
    nodes.push(document.createTextNode(text.slice(cursor, span.start)));
    const mark = document.createElement("mark");
    mark.style.setProperty("--label-color", colorOf(span.label));
    mark.title = span.label;
    mark.textContent = text.slice(span.start, span.end);
    nodes.push(mark);
    cursor = span.end;
  }
  nodes.push(document.createTextNode(text.slice(cursor)));
  container.replaceChildren(...nodes);
  $("span-list").replaceChildren(...state.spans.map((span) => {
    const item = document.createElement("li");
    item.textContent = `${span.label}: "${text.slice(span.start, span.end)}" [${span.start}, ${span.end})`;
    return item;
  }));
  $("submit").disabled = !state.task;
}

async function submit() {
  if (!state.task) return;
  try {
    await api("POST", `/api/v1/tasks/${state.task.id}/annotations`, { spans: state.spans });
    say(`Submitted ${state.spans.length} span(s).`);
    await nextTask();
  } catch (error) {
    say(error.message);
  }
}

function onKey(event) {
  if ($("annotate").hidden) return;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    submit();
  } else if (event.key === "Escape") {
    loadProjects();
  } else if (event.key === "Backspace" && state.spans.length && event.target.tagName !== "INPUT") {
    event.preventDefault();
    const removed = state.spans.pop();
    render();
    say(`${removed.label} removed.`);
  } else if (!event.ctrlKey && !event.metaKey && !event.altKey) {
    const label = state.project?.labels.find((l) => l.hotkey === event.key);
    if (label) { event.preventDefault(); addSpan(label.name); }
  }
}

$("sign-in-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
$("submit").addEventListener("click", submit);
$("back").addEventListener("click", loadProjects);
document.addEventListener("keydown", onKey);
if (state.token) loadProjects(); else show("sign-in");
