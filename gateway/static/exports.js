// A project's dataset versions on its dashboard: build one, follow its
// progress, download its files and read its dataset card; and imports of
// another tool's export, with what they left out.

import { $, api, el, request } from "./api.js";

const view = { project: null, timer: 0 };
const CARD = "dataset-card.md";

export function openExports(project) {
  view.project = project;
  $("export-result").textContent = "";
  $("import-result").textContent = "";
  $("import-left-out").replaceChildren();
  $("export-card").hidden = true;
  showExports();
}

async function showExports() {
  clearTimeout(view.timer);
  const project = view.project;
  if (!project) return;
  try {
    const { exports } = await api("GET", `/api/v1/projects/${project.id}/exports?limit=500`);
    if (view.project !== project) return;
    $("export-table").tBodies[0].replaceChildren(...exports.reverse().map(row));
    // Follow builds while the dashboard shows this project.
    if (exports.some((e) => e.state === "building") && !$("dashboard").hidden) {
      view.timer = setTimeout(showExports, 1000);
    }
  } catch (error) {
    $("export-result").textContent = error.message;
  }
}

function row(e) {
  const state = e.state === "building" && e.progress_total
    ? `building (${e.progress_done} of ${e.progress_total} tasks)`
    : e.state === "failed" ? `failed (${e.error_code})` : e.state;
  const splits = Object.entries(e.split_counts).map(([k, v]) => `${k} ${v}`).join(", ");
  const files = el("td");
  if (e.state === "ready") {
    const card = el("button", { type: "button", text: "Dataset card" });
    card.addEventListener("click", () => showCard(e));
    const list = el("ul", { class: "files" }, ...e.files.map((f) => {
      const get = el("button", { type: "button", text: f.name,
                                 "aria-label": `Download ${f.name} of ${e.name}` });
      get.addEventListener("click", () => download(e, f.name));
      return el("li", {}, get);
    }));
    files.append(card, list);
  }
  return el("tr", { "data-export": e.id },
    el("td", { text: e.name }), el("td", { text: state }),
    el("td", { text: String(e.annotation_count) }), el("td", { text: splits }), files);
}

async function build(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {
    name: form.get("name").trim(),
    formats: form.getAll("formats"),
    filter: { gold_only: form.get("gold_only") === "on",
              reviewed_only: form.get("reviewed_only") === "on" },
    intended_use: form.get("intended_use"),
  };
  try {
    const made = await api("POST", `/api/v1/projects/${view.project.id}/exports`, body);
    $("export-result").textContent = `Building ${made.name}.`;
    event.target.elements.name.value = "";
    await showExports();
  } catch (error) {
    $("export-result").textContent = error.message;
  }
}

async function fetchFile(e, name) {
  const response = await request("GET", `/api/v1/exports/${e.id}/files/${name}`);
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `Download failed (${response.status}).`);
  }
  return response.blob();
}

async function download(e, name) {
  try {
    const url = URL.createObjectURL(await fetchFile(e, name));
    const link = el("a", { href: url, download: `${e.name}-${name.replaceAll("/", "-")}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    $("export-result").textContent = error.message;
  }
}

async function showCard(e) {
  try {
    $("export-card-text").textContent = await (await fetchFile(e, CARD)).text();
    $("export-card-title").textContent = `Dataset card of ${e.name}`;
    $("export-card").hidden = false;
    $("export-card-text").focus();
  } catch (error) {
    $("export-result").textContent = error.message;
  }
}

async function startImport(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const project = view.project;
  $("import-left-out").replaceChildren();
  try {
    let job = await api("POST", `/api/v1/projects/${project.id}/imports`, form);
    $("import-result").textContent = "Importing…";
    while (job.state === "running") {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (view.project !== project) return;
      job = await api("GET", `/api/v1/imports/${job.id}`);
      if (job.progress_total) {
        $("import-result").textContent = `Importing… ${job.progress_done} of ${job.progress_total} steps.`;
      }
    }
    if (job.state === "failed") {
      $("import-result").textContent = `The import failed (${job.error_code}).`;
      return;
    }
    $("import-result").textContent =
      `Imported ${job.items} item(s) as ${job.documents} document(s): ${job.answers} answer(s) ` +
      `from ${job.annotators} annotator(s), ${job.suggestions} suggestion(s).`;
    $("import-left-out").replaceChildren(...Object.entries(job.left_out).map(([reason, count]) =>
      el("li", { text: `Left out: ${count} ${reason}` })));
    event.target.reset();
  } catch (error) {
    $("import-result").textContent = error.message;
  }
}

export function wireExports() {
  $("import-form").addEventListener("submit", startImport);
  $("export-form").addEventListener("submit", build);
  $("dashboard-exports").addEventListener("toggle", showExports);
}
