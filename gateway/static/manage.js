// Managers and admins: a project's dashboard (progress, queue, throughput,
// agreement, reviews), its members and documents; new projects and people.

import { $, api, el, formatNumber, say, session } from "./api.js";
import { openExports, wireExports } from "./exports.js";
import { openModels, refreshModels } from "./models.js";

const view = { project: null, names: new Map() };

// --- dashboard -----------------------------------------------------------------

export async function openDashboard(project, { showSection }) {
  view.project = project;
  $("dashboard-title").textContent = `Dashboard: ${project.name}`;
  $("upload-result").textContent = "";
  $("member-result").textContent = "";
  $("assign-result").textContent = "";
  $("dashboard-assign").hidden = project.assignment !== "assigned";
  view.names = new Map();
  if (session.me?.roles.includes("admin")) {
    try {
      for (const u of await api("GET", "/api/v1/users")) view.names.set(u.subject, u.username);
    } catch { /* members are shown by subject */ }
  }
  showMembers();
  showSection("dashboard");
  openExports(project);
  openModels(project);
  await refresh();
}

async function refresh() {
  try {
    const stats = await api("GET", `/api/v1/projects/${view.project.id}/stats`);
    for (const a of stats.annotators ?? []) if (a.username) view.names.set(a.subject, a.username);
    showStats(stats);
    showMembers();
    showTasks();
    refreshModels();
    $("dashboard-updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (error) {
    say(error.message);
  }
}

function showStats(stats) {
  const tasks = stats.tasks ?? {};
  const figures = [["Tasks", tasks.total], ["Open", tasks.open], ["In progress", tasks.in_progress],
                   ["In review", tasks.in_review], ["Completed", tasks.completed],
                   ["Queue depth", stats.queue_depth]];
  $("progress").replaceChildren(...figures.map(([name, value]) =>
    el("div", { class: "figure" }, el("dt", { text: name }), el("dd", { text: formatNumber(value) }))));
  const done = tasks.total ? Math.round((100 * (tasks.completed ?? 0)) / tasks.total) : 0;
  $("progress-bar").value = done;
  $("progress-bar").textContent = `${done}%`;
  $("progress-label").textContent = `${done}% of tasks completed`;

  const reviews = stats.reviews ?? {};
  $("review-counts").replaceChildren(...[["Accepted", reviews.accepted], ["Rejected", reviews.rejected],
                                         ["Corrected", reviews.corrected]].map(([name, value]) =>
    el("div", { class: "figure" }, el("dt", { text: name }), el("dd", { text: formatNumber(value) }))));

  const rows = (stats.annotators ?? []).map((a) => el("tr", {},
    ...[a.username || a.subject, a.submitted, a.skipped, formatNumber(a.seconds_per_task, 1),
        formatNumber(a.per_hour, 1),
        a.gold_agreement === null || a.gold_agreement === undefined ? "—" : a.gold_agreement.toFixed(3)]
      .map((v) => el("td", { text: formatNumber(v) }))));
  $("annotator-table").tBodies[0].replaceChildren(...rows);
  $("no-annotators").hidden = rows.length > 0;

  showAgreement(stats.agreement, stats.annotators ?? []);
}

// The agreement report (services/labeling/agreement.py, Report.to_dict()):
// one table per kind of answer, a row per label and one for all labels, and
// the annotator pairs behind the overall figures.
function showAgreement(report, annotators) {
  const names = new Map(annotators.map((a) => [a.subject, a.username || a.subject]));
  const who = (subject) => names.get(subject) ?? subject;
  const tables = [];
  const m = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(3));
  const table = (caption, section, headings, rows) => {
    if (!rows.length) return;
    tables.push(el("table", { class: "agreement", "data-section": section },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows.map(([name, ...values]) => el("tr", {},
        el("th", { scope: "row", text: name }),
        ...values.map((v) => el("td", { text: formatNumber(v) })))))));
  };
  const perLabel = (part, pick) => [
    ...Object.entries(part.per_label ?? {}).map(([label, x]) => [label, ...pick(x)]),
    ...(part.overall ? [["all labels", ...pick(part.overall)]] : []),
  ];
  const c = report?.classification;
  if (c) {
    table("Classes: agreement per class", "classification",
          ["Class", "Cohen's κ (mean of pairs)", "Fleiss' κ", "Krippendorff's α", "Tasks"],
          perLabel(c, (x) => [m(x.mean_cohen_kappa), m(x.fleiss_kappa), m(x.krippendorff_alpha),
                              x.tasks]));
    table("Classes: Cohen's κ per annotator pair", "classification-pairs",
          ["Pair", "Cohen's κ", "Tasks"],
          (c.overall ?? Object.values(c.per_label ?? {})[0])?.pairs?.map((p) =>
            [`${who(p.annotator_a)} / ${who(p.annotator_b)}`, m(p.kappa), p.tasks]) ?? []);
  }
  const s = report?.spans;
  if (s) {
    table("Spans: F1 per label", "spans", ["Label", "Exact F1", "Overlap F1"],
          perLabel(s, (x) => [m(x.mean_exact_f1), m(x.mean_overlap_f1)]));
    table("Spans: F1 per annotator pair", "spans-pairs",
          ["Pair", "Exact F1", "Overlap F1", "Tasks"],
          (s.overall?.pairs ?? []).map((p) => [`${who(p.annotator_a)} / ${who(p.annotator_b)}`,
                                             m(p.exact?.f1), m(p.overlap?.f1), p.tasks]));
  }
  const b = report?.boxes;
  if (b) {
    table(`Boxes: IoU and F1 at IoU ≥ ${b.threshold} per label`, "boxes",
          ["Label", "Mean IoU", "F1"], perLabel(b, (x) => [m(x.mean_iou), m(x.mean_f1)]));
  }
  const n = report?.counts;
  $("agreement-counts").textContent = n
    ? `${n.tasks_used} of ${n.tasks} task(s) answered by two or more annotators; `
      + `${n.annotators} annotator(s), ${n.annotator_pairs} pair(s), ${n.comparisons} comparison(s).`
    : "";
  $("agreement").replaceChildren(...tables);
  $("no-agreement").hidden = tables.length > 0 && (n?.tasks_used ?? 1) > 0;
}

async function addMember(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const username = form.get("username").trim();
  const role = form.get("role");
  const body = { username, role };
  // An admin can look the person up; the API names members by subject.
  const known = [...view.names].find(([, name]) => name === username);
  if (known) body.subject = known[0];
  try {
    view.project = await api("POST", `/api/v1/projects/${view.project.id}/members`, body);
    const added = view.project.members.find((m) => m.role === role && !view.names.has(m.subject));
    if (added) view.names.set(added.subject, username);
    $("member-result").textContent = `${username} added as ${role}.`;
    event.target.reset();
    showMembers();
  } catch (error) {
    $("member-result").textContent = error.message;
  }
}

function showMembers() {
  $("member-list").replaceChildren(...(view.project.members ?? []).map((m) =>
    el("li", { text: `${view.names.get(m.subject) || m.subject} · ${m.role}` })));
}

async function upload(event) {
  event.preventDefault();
  const files = [...$("upload-files").files];
  if (!files.length) { $("upload-result").textContent = "Choose one or more files first."; return; }
  let stored = 0;
  const refused = [];
  for (const file of files) {
    $("upload-result").textContent = `Uploading ${stored + refused.length + 1} of ${files.length}…`;
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      await api("POST", `/api/v1/projects/${view.project.id}/documents`, form);
      stored += 1;
    } catch (error) {
      refused.push(`${file.name}: ${error.message}`);
    }
  }
  $("upload-result").textContent = `${stored} of ${files.length} document(s) uploaded; tasks appear once `
    + `they are cleaned.${refused.length ? ` Refused: ${refused.join(" ")}` : ""}`;
  event.target.reset();
}

async function assign(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const username = form.get("username").trim();
  try {
    const { assigned } = await api("POST", `/api/v1/projects/${view.project.id}/assignments`,
                                   { username, count: Number(form.get("count")) });
    $("assign-result").textContent = `${assigned} task(s) assigned to ${username}.`;
    await refresh();
  } catch (error) {
    $("assign-result").textContent = error.message;
  }
}

async function showTasks() {
  if (!$("dashboard-tasks").open) return;
  try {
    const { tasks, total } = await api("GET", `/api/v1/projects/${view.project.id}/tasks?limit=200`);
    $("task-table").tBodies[0].replaceChildren(...tasks.map((task) => {
      const label = `Priority of task ${task.id.slice(0, 8)}`;
      const input = el("input", { type: "number", value: String(task.priority), "aria-label": label,
                                  min: "-1000000", max: "1000000" });
      const save = el("button", { type: "button", text: "Set" });
      save.addEventListener("click", () => setPriority(task, Number(input.value)));
      // A synthetic example has no document of its own: say how it was made.
      const source = task.synthetic ? `synthetic (${task.synthetic.replace("_", " ")})`
                                    : task.document_id.slice(0, 8);
      return el("tr", task.synthetic ? { class: "synthetic" } : {},
        el("td", { text: task.id.slice(0, 8) }), el("td", { text: source }),
        el("td", { text: task.state }), el("td", { text: `${task.submitted} of ${task.overlap}` }),
        el("td", {}, input, save));
    }));
    $("task-result").textContent = total > tasks.length ? `The first ${tasks.length} of ${total}.` : "";
  } catch (error) {
    $("task-result").textContent = error.message;
  }
}

async function setPriority(task, priority) {
  try {
    await api("PATCH", `/api/v1/tasks/${task.id}`, { priority });
    $("task-result").textContent = `Task ${task.id.slice(0, 8)} now has priority ${priority}.`;
  } catch (error) {
    $("task-result").textContent = error.message;
  }
}

export function wireDashboard() {
  $("dashboard-tasks").addEventListener("toggle", showTasks);
  $("assign-form").addEventListener("submit", assign);
  $("dashboard-refresh").addEventListener("click", refresh);
  $("member-form").addEventListener("submit", addMember);
  $("upload-form").addEventListener("submit", upload);
  wireExports();
}

// --- new project ---------------------------------------------------------------

// One label per line: NAME | #colour | hotkey | description (all but the name optional).
export function parseLabels(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [name, color = "", hotkey = "", ...rest] = line.split("|").map((p) => p.trim());
    return { name, color, hotkey, description: rest.join("|") };
  });
}

function parseFields(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [name, ...rest] = line.split("|").map((p) => p.trim());
    return { name, description: rest.join("|") };
  });
}

export function openNewProject({ showSection }) {
  $("project-result").textContent = "";
  showSection("new-project");
  $("new-project-form").querySelector("input").focus();
}

async function createProject(event, open) {
  event.preventDefault();
  const form = new FormData(event.target);
  const spans = parseLabels(form.get("spans"));
  const body = {
    name: form.get("name").trim(),
    guidelines: form.get("guidelines"),
    overlap: Number(form.get("overlap")),
    assignment: form.get("assignment"),
    review: form.get("review") === "on",
    window: { kind: form.get("window_kind"), size: Number(form.get("window_size")) || 0 },
  };
  const config = form.get("label_config").trim();
  if (config) {
    body.label_config = config;
  } else {
    body.schema = {
      spans,
      classes: parseLabels(form.get("classes")),
      multi_label: form.get("multi_label") === "on",
      relations: parseLabels(form.get("relations")),
      boxes: parseLabels(form.get("boxes")),
      fields: parseFields(form.get("fields")),
    };
  }
  try {
    const project = await api("POST", "/api/v1/projects", body);
    event.target.reset();
    say(`Project ${project.name} created.`);
    await open(project);
  } catch (error) {
    $("project-result").textContent = error.message;
  }
}

export function wireNewProject(open) {
  $("new-project-form").addEventListener("submit", (event) => createProject(event, open));
  const kind = $("new-project-form").elements.window_kind;
  kind.addEventListener("change", () => { $("window-size").hidden = kind.value !== "fixed"; });
}

// --- people --------------------------------------------------------------------

export function openPeople({ showSection }) {
  $("user-result").replaceChildren();
  showSection("people");
  $("user-form").querySelector("input").focus();
  listUsers();
}

// Each account with what an admin can do to it; the REST routes audit each.
async function listUsers() {
  const rows = $("user-list").tBodies[0];
  try {
    const users = await api("GET", "/api/v1/users");
    rows.replaceChildren(...users.map((user) => {
      const path = `/api/v1/users/${encodeURIComponent(user.username)}`;
      const act = (label, method, suffix, done) => el("button", {
        type: "button",
        "aria-label": `${label} ${user.username}`,
        onclick: () => accountAction(method, path + suffix, done),
      }, label);
      const state = [user.is_disabled ? "disabled" : "active", user.has_totp ? "TOTP" : ""];
      return el("tr", {},
        el("td", { text: user.username }),
        el("td", { text: user.roles.join(", ") }),
        el("td", { text: state.filter(Boolean).join(", ") }),
        el("td", {},
          user.is_disabled
            ? act("Enable", "POST", "/enable", () => `${user.username} can sign in again.`)
            : act("Disable", "POST", "/disable", () => `${user.username} is disabled.`),
          act("Reset password", "POST", "/password-reset", (r) => el("span", {},
            `New password for ${user.username}, shown once: `, el("code", { text: r.password }))),
          user.has_totp
            ? act("Remove TOTP", "DELETE", "/totp", () => `${user.username} signs in without TOTP.`)
            : null));
    }));
  } catch (error) {
    $("user-result").textContent = error.message;
  }
}

async function accountAction(method, path, done) {
  try {
    $("user-result").replaceChildren(done(await api(method, path)));
    await listUsers();
  } catch (error) {
    $("user-result").textContent = error.message;
  }
}

async function createUser(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const roles = form.getAll("roles");
  if (!roles.length) { $("user-result").textContent = "Choose at least one role."; return; }
  const body = { username: form.get("username").trim(), roles };
  if (form.get("password")) body.password = form.get("password");
  try {
    const user = await api("POST", "/api/v1/users", body);
    event.target.reset();
    listUsers();
    $("user-result").replaceChildren(
      `${user.username} created (${user.roles.join(", ")}).`,
      user.password ? el("span", {}, " Password, shown once: ", el("code", { text: user.password })) : "");
  } catch (error) {
    $("user-result").textContent = error.message;
  }
}

export function wirePeople() {
  $("user-form").addEventListener("submit", createUser);
}
