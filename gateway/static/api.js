// Talking to the gateway: JSON calls, problem responses and images, all
// behind the session cookie the gateway set at sign-in. The page never holds
// a token: it sends the session's CSRF token with every state-changing call.
// Everything comes from the gateway itself; nothing from elsewhere.

const STATE_CHANGING = ["POST", "PUT", "PATCH", "DELETE"];

export const session = {
  me: null, // {subject, username, roles, csrf_token}
};

export async function request(method, path, body) {
  const isForm = body instanceof FormData;
  const headers = {};
  if (body && !isForm) headers["content-type"] = "application/json";
  if (STATE_CHANGING.includes(method) && session.me?.csrf_token) {
    headers["x-csrf-token"] = session.me.csrf_token;
  }
  return fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body ? (isForm ? body : JSON.stringify(body)) : undefined,
  });
}

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called when the gateway no longer accepts the session (it timed out or
// was signed out elsewhere): the page returns to sign-in rather than showing
// the same refusal everywhere.
export const hooks = { unauthorized: () => {} };

export async function api(method, path, body) {
  const response = await request(method, path, body);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && session.me) hooks.unauthorized(data.detail);
  if (!response.ok) {
    throw new ApiError(data.detail || `Request failed (${response.status}).`,
                       response.status, data.code);
  }
  return data;
}

// An image the gateway serves behind the session, as a data: URL (the
// page's content security policy admits 'self' and data: images only).
export async function imageUrl(path) {
  const response = await request("GET", path);
  if (!response.ok) throw new ApiError(`The image could not be loaded (${response.status}).`,
                                       response.status, "");
  const blob = await response.blob();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

export const $ = (id) => document.getElementById(id);

export function say(message) { $("status").textContent = message; }

// A small element builder: el("button", {type: "button", class: "x"}, "text").
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "color") node.style.setProperty("--label-color", value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// Keys typed into a form control belong to that control, not to the views.
export function isTyping(event) {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

// Ask for a line of text in a modal dialog; resolves to null when cancelled.
export function ask(title, label, { required = true, submitLabel = "OK" } = {}) {
  return new Promise((resolve) => {
    const input = el("textarea", { id: "ask-input", rows: "3", required });
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { method: "dialog" },
      el("h2", { text: title }),
      el("label", { for: "ask-input", text: label }),
      input, error,
      el("div", { class: "actions" },
        el("button", { type: "submit", text: submitLabel }),
        el("button", { type: "button", value: "cancel", text: "Cancel (Esc)",
                       onclick: () => dialog.close("cancel") })));
    const dialog = el("dialog", { "aria-label": title }, form);
    let answered = null;
    form.addEventListener("submit", (event) => {
      const text = input.value.trim();
      if (required && !text) { event.preventDefault(); error.textContent = "Please write something."; return; }
      answered = text;
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      }
      event.stopPropagation();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "cancel" ? null : answered);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}
