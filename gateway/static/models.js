// Managers: a project's model assistance (on or off, queue order, how
// annotators review suggestions, training on demand) and its learning curve: held-out score against training answers,
// beside the trivial baseline's. Built into the dashboard from here, so the
// page's HTML stays as it is; no inline script or style (the CSP forbids both).

import { $, api, el, formatNumber } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 420;
const HEIGHT = 180;
const PAD = 32;
const view = { project: null };

function svg(name, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

function section() {
  let details = $("dashboard-models");
  if (details) return details;
  const enabled = el("input", { type: "checkbox", id: "assistance-enabled" });
  const ordering = el("select", { id: "assistance-ordering" },
    el("option", { value: "arrival", text: "Arrival (oldest first)" }),
    el("option", { value: "uncertainty", text: "Uncertainty (least sure first)" }));
  const reviewMode = el("select", { id: "assistance-review-mode" },
    el("option", { value: "edit", text: "Edit (accept, change or ignore them while answering)" }),
    el("option", { value: "binary", text: "Binary (accept or reject one at a time)" }));
  const train = el("button", { type: "button", id: "model-train", text: "Train now" });
  details = el("details", { id: "dashboard-models" },
    el("summary", { text: "Model assistance and learning curve" }),
    el("p", { class: "help", text: "A model trained on the project's reviewed answers (or all "
      + "answers without review) suggests spans or classes, drawn dashed for annotators, and "
      + "can order the queue by its uncertainty. Scores are on held-out tasks." }),
    el("p", {}, el("label", { for: "assistance-enabled" }, enabled, " Model assistance on")),
    el("p", {}, el("label", { for: "assistance-ordering", text: "Queue order " }), ordering),
    el("p", {}, el("label", { for: "assistance-review-mode", text: "Suggestion review " }),
      reviewMode),
    el("p", {}, train),
    el("figure", {},
      el("div", { id: "learning-curve", role: "img", "aria-label": "Learning curve" }),
      el("figcaption", { class: "help",
        text: "Solid: the model's held-out score; dashed: the baseline's, by training answers." })),
    el("table", { id: "model-table", class: "grid" },
      el("caption", { text: "Model versions, newest first" }),
      el("thead", {}, el("tr", {}, ...["Version", "State", "Answers", "Held out", "Score",
        "Baseline", "Seconds", "Trained"].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody")),
    el("p", { id: "model-result", "aria-live": "polite" }));
  $("dashboard-tasks").after(details);
  enabled.addEventListener("change", () => patch({ enabled: enabled.checked }));
  ordering.addEventListener("change", () => patch({ ordering: ordering.value }));
  reviewMode.addEventListener("change", () => patch({ review_mode: reviewMode.value }));
  train.addEventListener("click", trainNow);
  details.addEventListener("toggle", () => { if (details.open) refreshModels(); });
  return details;
}

export async function openModels(project) {
  view.project = project;
  section();
  $("model-result").textContent = "";
  await refreshModels();
}

export async function refreshModels() {
  const details = section();
  if (!view.project || !details.open) return;
  try {
    const found = await api("GET", `/api/v1/projects/${view.project.id}/models`);
    $("assistance-enabled").checked = found.assistance.enabled;
    $("assistance-ordering").value = found.assistance.ordering;
    $("assistance-review-mode").value = found.assistance.review_mode;
    $("model-train").disabled = !found.assistance.enabled;
    showVersions(found.models);
    showCurve(found.models.filter((m) => m.state === "ready").reverse());
  } catch (error) {
    $("model-result").textContent = error.message;
  }
}

async function patch(change) {
  try {
    await api("PATCH", `/api/v1/projects/${view.project.id}/assistance`, change);
    $("model-result").textContent = "Saved.";
    await refreshModels();
  } catch (error) {
    $("model-result").textContent = error.message;
  }
}

async function trainNow() {
  try {
    const version = await api("POST", `/api/v1/projects/${view.project.id}/models`);
    $("model-result").textContent = `Version ${version.version} is ${version.state}.`;
    await refreshModels();
  } catch (error) {
    $("model-result").textContent = error.message;
  }
}

function showVersions(models) {
  $("model-table").tBodies[0].replaceChildren(...models.map((m) => el("tr", {},
    ...[m.version, m.error ? `${m.state} (${m.error})` : m.state, m.train_answers, m.held_out,
        m.state === "ready" ? m.score.toFixed(3) : "—",
        m.state === "ready" ? m.baseline_score.toFixed(3) : "—",
        formatNumber(m.seconds, 1), m.trained_at ? new Date(m.trained_at).toLocaleString() : "—"]
      .map((v) => el("td", { text: String(v) })))));
}

function showCurve(ready) {
  const box = $("learning-curve");
  if (!ready.length) {
    box.replaceChildren(el("p", { class: "help", text: "No model yet." }));
    return;
  }
  const most = Math.max(...ready.map((m) => m.train_answers), 1);
  const x = (n) => PAD + ((WIDTH - 2 * PAD) * n) / most;
  const y = (v) => HEIGHT - PAD - (HEIGHT - 2 * PAD) * Math.min(Math.max(v, 0), 1);
  const line = (key) => ready.map((m) => `${x(m.train_answers)},${y(m[key])}`).join(" ");
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT },
    svg("line", { x1: PAD, y1: y(0), x2: WIDTH - PAD, y2: y(0), stroke: "#444" }),
    svg("line", { x1: PAD, y1: y(0), x2: PAD, y2: y(1), stroke: "#444" }),
    svg("text", { x: 2, y: y(1) + 4, "font-size": 11 }, "1.0"),
    svg("text", { x: 2, y: y(0) + 4, "font-size": 11 }, "0.0"),
    svg("text", { x: WIDTH - PAD - 4, y: HEIGHT - 8, "font-size": 11, "text-anchor": "end" },
      `${most} answers`),
    svg("polyline", { points: line("baseline_score"), fill: "none", stroke: "#777",
                      "stroke-dasharray": "4 3", "stroke-width": 2 }),
    svg("polyline", { points: line("score"), fill: "none", stroke: "#1f5fa8", "stroke-width": 2 }),
    ...ready.map((m) => svg("circle", { cx: x(m.train_answers), cy: y(m.score), r: 3,
                                        fill: "#1f5fa8" },
      svg("title", {}, `Version ${m.version}: ${m.score.toFixed(3)} after ${m.train_answers} answers`))));
  box.replaceChildren(chart);
}
