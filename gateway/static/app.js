// The web page: sign-in, role-aware navigation and the keys that drive each
// view. Annotators label (annotate.js), reviewers review (review.js),
// managers and admins watch and set up projects (manage.js), auditors search
// the audit trail (audit.js). Everything comes from the gateway itself.

import { $, api, el, hooks, isTyping, request, say, session } from "./api.js";
import { annotateKey, openAnnotate, wireAnnotate } from "./annotate.js";
import { openAudit, wireAudit } from "./audit.js";
import { openDashboard, openNewProject, openPeople, wireDashboard, wireNewProject,
         wirePeople } from "./manage.js";
import { openReview, reviewKey, wireReview } from "./review.js";

const SECTIONS = ["sign-in", "projects", "annotate", "review", "dashboard", "new-project",
                  "people", "audit"];
const AUDIT_ROLES = ["auditor", "admin"];
const PROJECT_ROLES = ["admin", "manager", "annotator", "reviewer"];
const KEYS = { annotate: annotateKey, review: reviewKey };

let current = "sign-in";

function has(...roles) { return session.me?.roles.some((r) => roles.includes(r)) ?? false; }

function showSection(section) {
  current = section;
  for (const id of SECTIONS) $(id).hidden = id !== section;
  const signedIn = section !== "sign-in";
  $("sign-out").hidden = !signedIn;
  $("nav").hidden = !signedIn;
  $("nav-projects").hidden = !has(...PROJECT_ROLES);
  $("nav-new-project").hidden = !has("admin");
  $("nav-people").hidden = !has("admin");
  $("nav-audit").hidden = !has(...AUDIT_ROLES);
  for (const button of $("nav").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.section === section));
  }
}

const context = { showSection, home: () => loadProjects() };

// Sign-in happens at the identity provider (the built-in issuer's login
// page, or Keycloak's); the gateway keeps the session and sets its cookie.
function signIn() { window.location.assign("/auth/login"); }

async function signOut() {
  const response = await request("POST", "/auth/logout");
  const { redirect } = await response.json().catch(() => ({}));
  session.me = null;
  // The provider's end-session page, which comes back here.
  window.location.assign(redirect || "/");
}

function showSignIn(message) {
  session.me = null;
  $("who").textContent = "";
  showSection("sign-in");
  say(message);
  $("sign-in-button").focus();
}

hooks.unauthorized = () => showSignIn("Your session has ended; please sign in again.");

// The views a person may open in a project, from their roles and membership.
function viewsOf(project) {
  const mine = (project.members ?? []).filter((m) => m.subject === session.me.subject)
    .map((m) => m.role);
  const views = [];
  if (mine.includes("annotator")) views.push(["Annotate", openAnnotate]);
  if (mine.includes("reviewer") && project.review !== false) views.push(["Review", openReview]);
  if (has("admin") || mine.includes("manager")) views.push(["Dashboard", openDashboard]);
  return views;
}

async function loadProjects() {
  try {
    session.me = await api("GET", "/api/v1/me");
    $("who").textContent = `${session.me.username} (${session.me.roles.join(", ")})`;
    if (!has(...PROJECT_ROLES)) { openAudit(context); return; }
    const { projects } = await api("GET", "/api/v1/projects?limit=500");
    const list = $("project-list");
    list.replaceChildren(...projects.map((project) => {
      const views = viewsOf(project);
      return el("li", {},
        el("span", { class: "project-name", text: project.name }),
        ...views.map(([name, open]) => el("button", {
          type: "button", text: name, "aria-label": `${name}: ${project.name}`,
          onclick: () => openWith(open, project) })),
        views.length ? "" : el("span", { class: "help", text: "no view for your role" }));
    }));
    $("no-projects").hidden = projects.length > 0;
    showSection("projects");
    say("");
    list.querySelector("button")?.focus();
  } catch (error) {
    // Not signed in (the sign-in view is already up) or the session ended
    // (the unauthorized hook brought it up): nothing more to say.
    if (error.status !== 401) say(error.message);
  }
}

async function openWith(open, project) {
  try {
    // The list may be stale (members added since); read the project afresh.
    const fresh = await api("GET", `/api/v1/projects/${project.id}`);
    await open(fresh, context);
  } catch (error) {
    say(error.message);
  }
}

function onKey(event) {
  if (document.querySelector("dialog[open]")) return;
  const typing = isTyping(event);
  if (event.key === "?" && !typing) {
    event.preventDefault();
    $("shortcuts").showModal();
    return;
  }
  KEYS[current]?.(event, typing);
}

$("sign-in-button").addEventListener("click", signIn);
$("sign-out").addEventListener("click", signOut);
$("nav-projects").addEventListener("click", loadProjects);
$("nav-new-project").addEventListener("click", () => openNewProject(context));
$("nav-people").addEventListener("click", () => openPeople(context));
$("nav-audit").addEventListener("click", () => openAudit(context));
$("shortcuts-open").addEventListener("click", () => $("shortcuts").showModal());
$("shortcuts-close").addEventListener("click", () => $("shortcuts").close());
$("review-shortcuts").addEventListener("click", () => $("shortcuts").showModal());
wireAnnotate();
wireReview();
wireDashboard();
wireNewProject((project) => openDashboard(project, context));
wirePeople();
wireAudit();
document.addEventListener("keydown", onKey);
// The provider sends the browser back with ?sign-in=failed when it refused.
const params = new URLSearchParams(window.location.search);
if (params.has("sign-in")) {
  window.history.replaceState(null, "", "/");
  showSignIn("Sign-in failed; please try again.");
} else {
  loadProjects();
}
