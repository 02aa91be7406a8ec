// The auditor's view: search the audit trail, follow a document's lineage or a
// person's activity, download the report and verify the chain.

import { $, api, request, say } from "./api.js";

const state = { story: null };

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

export function openAudit({ showSection }) {
  showSection("audit");
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

export function wireAudit() {
  $("audit-form").addEventListener("submit", searchAudit);
  $("audit-lineage").addEventListener("click", () => tellStory("lineage"));
  $("audit-activity").addEventListener("click", () => tellStory("activity"));
  $("audit-verify").addEventListener("click", verifyChain);
  $("report-html").addEventListener("click", () => downloadReport("html"));
  $("report-pdf").addEventListener("click", () => downloadReport("pdf"));
}
