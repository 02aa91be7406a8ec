// The web page: annotators pick a project and label spans with the keyboard;
// auditors search the audit trail, follow a document's lineage or a person's
// activity, download reports and verify the chain.
// Everything comes from the gateway itself; nothing is loaded from elsewhere.

const state = { token: sessionStorage.getItem("strongroom.token"), project: null,
                task: null, spans: [], roles: [], story: null };
const $ = (id) => document.getElementById(id);

async function request(method, path, body) {
  return fetch(path, {
    method,
    headers: { authorization: `Bearer ${state.token}`,
               ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}

async function api(method, path, body) {
  const response = await request(method, path, body);
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

const AUDIT_ROLES = ["auditor", "admin"];
const PROJECT_ROLES = ["admin", "manager", "annotator", "reviewer"];

function show(section) {
  for (const id of ["sign-in", "projects", "annotate", "audit"]) $(id).hidden = id !== section;
  $("sign-out").hidden = section === "sign-in";
  const mayAudit = state.roles.some((r) => AUDIT_ROLES.includes(r));
  const mayWork = state.roles.some((r) => PROJECT_ROLES.includes(r));
  $("nav").hidden = section === "sign-in" || !(mayAudit && mayWork);
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
  state.roles = [];
  sessionStorage.removeItem("strongroom.token");
  $("who").textContent = "";
  show("sign-in");
  say("Signed out.");
}

async function loadProjects() {
  try {
    const me = await api("GET", "/api/v1/me");
    state.roles = me.roles;
    $("who").textContent = `${me.username} (${me.roles.join(", ")})`;
    if (!me.roles.some((r) => PROJECT_ROLES.includes(r))) { openAudit(); return; }
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

// --- the audit trail -------------------------------------------------------

function auditFilters() {
  const form = new FormData($("audit-form"));
  const filters = {};
  for (const [name, value] of form) {
    if (!value) continue;
    // A date means the whole day in UTC.
    if (name === "since") filters.since = `${value}T00:00:00Z`;
    else if (name === "until") filters.until = nextDay(value);
    else filters[name] = value;
  }
  return filters;
}

function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().replace(".000Z", "Z");
}

function openAudit() {
  show("audit");
  say("");
  $("audit-form").querySelector("input").focus();
}

function showEvents(events, summary) {
  $("audit-summary").textContent = summary;
  $("audit-results").tBodies[0].replaceChildren(...events.map((event) => {
    const row = document.createElement("tr");
    const resource = event.resource.id ? `${event.resource.type} ${event.resource.id}`
                                       : event.resource.type;
    const outcome = event.reason ? `${event.outcome} (${event.reason})` : event.outcome;
    const cells = [String(event.sequence), (event.time || "").replace("T", " "),
                   event.actor.username || event.actor.subject || "anonymous",
                   event.action, resource, outcome, event.service];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    if (event.outcome !== "success") row.className = "refused";
    return row;
  }));
}

async function searchAudit(event) {
  event.preventDefault();
  state.story = null;
  $("audit-reports").hidden = true;
  const query = new URLSearchParams({ ...auditFilters(), limit: "200" });
  try {
    const found = await api("GET", `/api/v1/audit/events?${query}`);
    showEvents(found.events, `${found.total} matching event(s), newest first.`);
  } catch (error) { say(error.message); }
}

async function tellStory(kind) {
  const filters = auditFilters();
  let path;
  const query = new URLSearchParams();
  if (kind === "lineage") {
    if (!filters.document_id) { say("Enter a document id first."); return; }
    path = `/api/v1/audit/lineage/documents/${encodeURIComponent(filters.document_id)}`;
  } else {
    if (!filters.username) { say("Enter a person's username first."); return; }
    path = `/api/v1/audit/activity/${encodeURIComponent(filters.username)}`;
    for (const name of ["since", "until"]) if (filters[name]) query.set(name, filters[name]);
  }
  try {
    const story = await api("GET", `${path}?${query}`);
    state.story = { path, query };
    const more = story.is_truncated ? " Only the newest are shown." : "";
    const what = kind === "lineage" ? "touched this document" : "by this person";
    showEvents(story.events, `${story.events.length} event(s) ${what}, oldest first.${more}`);
    $("audit-reports").hidden = false;
    say("");
  } catch (error) { say(error.message); }
}

async function downloadReport(format) {
  if (!state.story) return;
  const query = new URLSearchParams(state.story.query);
  query.set("format", format);
  const response = await request("GET", `${state.story.path}?${query}`);
  if (!response.ok) { say(`The report could not be made (${response.status}).`); return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `strongroom-audit-report.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(link.href);
  say(`Report downloaded (${format.toUpperCase()}).`);
}

async function verifyChain() {
  try {
    const result = await api("GET", "/api/v1/audit/verify");
    say(result.is_intact
      ? `Audit chain intact: ${result.event_count} events, ${result.checkpoint_count} signed checkpoints.`
      : `Audit chain DAMAGED at entry ${result.damaged_position} (${result.damage}): ${result.problem}`);
  } catch (error) { say(error.message); }
}

$("audit-form").addEventListener("submit", searchAudit);
$("audit-lineage").addEventListener("click", () => tellStory("lineage"));
$("audit-activity").addEventListener("click", () => tellStory("activity"));
$("audit-verify").addEventListener("click", verifyChain);
$("report-html").addEventListener("click", () => downloadReport("html"));
$("report-pdf").addEventListener("click", () => downloadReport("pdf"));
$("nav-projects").addEventListener("click", loadProjects);
$("nav-audit").addEventListener("click", openAudit);
$("sign-in-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
$("submit").addEventListener("click", submit);
$("back").addEventListener("click", loadProjects);
document.addEventListener("keydown", onKey);
if (state.token) loadProjects(); else show("sign-in");
