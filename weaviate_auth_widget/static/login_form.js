// The login panel's secret fields: an anywidget ES module shipped in the Python package
// (no build step, nothing fetched at run time).
//
// What is typed here lives in plain DOM inputs, never in widget state: nothing syncs per
// keystroke, nothing is echoed back, nothing lands in a notebook saved with widget state.
// When the page's own Jupyter server is the kernel's weaviate-auth broker (checked with its
// proof route), Connect posts the secrets from the browser straight to the broker's REST
// API (same origin, Jupyter's cookie + XSRF header) and the kernel hears only the outcome.
// Otherwise (VS Code, plain kernels) they go to the kernel once, in one custom message.

const CHECK_TIMEOUT_MS = 5000;
const LOGIN_TIMEOUT_MS = 90000;

/** The page's Jupyter base URL: Lab / Notebook 7 put it on <body>, others in PageConfig. */
function pageBaseUrl() {
  const fromBody = document.body && document.body.dataset ? document.body.dataset.baseUrl : "";
  if (fromBody) return fromBody;
  const config = document.getElementById("jupyter-config-data");
  if (config) {
    try {
      const base = JSON.parse(config.textContent || "{}").baseUrl;
      if (typeof base === "string" && base) return base;
    } catch (_) {
      /* no usable page config: the root */
    }
  }
  return "/";
}

function apiBase() {
  return new URL(pageBaseUrl().replace(/\/?$/, "/") + "weaviate-auth/api/", window.location.href);
}

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function deadline(ms) {
  return typeof AbortSignal !== "undefined" && AbortSignal.timeout ? AbortSignal.timeout(ms) : undefined;
}

/** Is the kernel's broker this page's server? Same API path, it proves it holds the
 *  kernel's broker token (the kernel sent the expected answer), and our cookie works. */
async function brokerReachable(broker) {
  if (!broker || !broker.api_path || !broker.nonce || !broker.proof) return false;
  const base = apiBase();
  if (base.pathname !== broker.api_path) return false;
  try {
    const proof = await fetch(new URL("proof?nonce=" + encodeURIComponent(broker.nonce), base), {
      credentials: "same-origin",
      signal: deadline(CHECK_TIMEOUT_MS),
    });
    if (!proof.ok || (await proof.json()).proof !== broker.proof) return false;
    const status = await fetch(new URL("status", base), {
      credentials: "same-origin",
      headers: { "X-XSRFToken": xsrfToken() },
      signal: deadline(CHECK_TIMEOUT_MS),
    });
    return status.ok;
  } catch (_) {
    return false;
  }
}

function newId() {
  if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
  return String(Date.now()) + Math.random().toString(16).slice(2);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const uid = "waw-" + newId().replace(/[^A-Za-z0-9]/g, "").slice(0, 12);
  el.classList.add("waw-form");
  const rows = element("div", "waw-form-fields");
  const modules = element("details", "waw-form-modules");
  const summary = element("summary", "", "Module keys (optional)");
  const moduleRows = element("div", "waw-form-fields");
  modules.append(summary, moduleRows);
  const actions = element("div", "waw-form-actions");
  const button = element("button", "waw-connect jupyter-button widget-button mod-primary");
  button.type = "button";
  actions.append(button);
  const notice = element("div", "waw-form-notice");
  notice.id = uid + "-notice";
  el.append(rows, modules, actions, notice);

  /** kind -> input; inputs are reused across re-renders so typed values survive. */
  const inputs = new Map();
  let route = "checking";
  let pending = null;

  function input(kind, label, placeholder) {
    let entry = inputs.get(kind);
    if (!entry) {
      const row = element("div", "waw-form-row");
      const id = uid + "-" + kind.replace(/[^A-Za-z0-9]/g, "-");
      const lab = element("label", "waw-form-label", label);
      lab.htmlFor = id;
      const box = element("input", "waw-form-input");
      box.type = "password";
      box.id = id;
      box.autocomplete = "off";
      box.spellcheck = false;
      box.setAttribute("aria-describedby", notice.id);
      // Enter submits; every other key (Ctrl+S: save the notebook) bubbles on to Jupyter
      box.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.isComposing && !event.shiftKey) {
          event.preventDefault();
          submit();
        }
      });
      row.append(lab, box);
      entry = { row, label: lab, box };
      inputs.set(kind, entry);
    }
    entry.label.textContent = label;
    entry.box.placeholder = placeholder || "";
    return entry;
  }

  function renderFields() {
    const shown = new Set();
    rows.replaceChildren(
      ...model.get("fields").map((f) => {
        shown.add(f.kind);
        return input(f.kind, f.label, f.placeholder).row;
      }),
    );
    moduleRows.replaceChildren(
      ...model.get("module_keys").map((f) => {
        shown.add(f.kind);
        return input(f.kind, f.label, "").row;
      }),
    );
    for (const [kind, entry] of inputs) {
      if (!shown.has(kind)) {
        entry.box.value = ""; // a field no longer shown keeps nothing
        inputs.delete(kind);
      }
    }
  }

  function renderButton() {
    button.textContent = model.get("label");
    button.disabled = Boolean(model.get("disabled"));
  }

  function renderNotice() {
    notice.textContent =
      route === "broker"
        ? "Secrets go from this page straight to the weaviate-auth broker of this Jupyter server; the kernel never sees them."
        : route === "kernel"
          ? "No weaviate-auth broker is reachable from this page: on Connect the secrets go to the kernel once, in one message, and the fields are cleared."
          : "Checking for the weaviate-auth broker…";
    el.dataset.route = route;
  }

  /** Typed secrets of the fields shown (kind -> value), empty ones left out. */
  function typed() {
    const found = {};
    for (const [kind, entry] of inputs) if (entry.box.value) found[kind] = entry.box.value;
    return found;
  }

  function clear() {
    for (const entry of inputs.values()) entry.box.value = "";
  }

  let checked = Promise.resolve();
  function check() {
    route = "checking";
    renderNotice();
    checked = brokerReachable(model.get("broker")).then((ok) => {
      route = ok ? "broker" : "kernel";
      renderNotice();
    });
  }

  async function submit() {
    if (button.disabled) return;
    await checked;
    const id = newId();
    pending = id;
    if (route === "broker") {
      // the kernel answers with the profile to post (or asks first): kinds only, no values
      model.send({ event: "connect", id, route: "broker", typed: Object.keys(typed()) });
    } else {
      const secrets = typed();
      clear();
      model.send({ event: "connect", id, route: "kernel", secrets });
    }
  }

  async function post(msg) {
    const secrets = typed();
    clear();
    const login = Object.keys(secrets).length === 0 && msg.unchanged;
    const url = new URL(
      "profiles/" + encodeURIComponent(msg.name) + (login ? "/login" : "/connect"),
      apiBase(),
    );
    let result;
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-XSRFToken": xsrfToken() },
        body: JSON.stringify(login ? {} : { ...msg.body, secrets }),
        signal: deadline(LOGIN_TIMEOUT_MS),
      });
      if (response.ok) {
        result = { ok: true };
      } else {
        let error = {};
        try {
          error = (await response.json()).error || {};
        } catch (_) {
          /* not our JSON (a proxy's page): say the status */
        }
        result = {
          ok: false,
          code: String(error.code || "http_" + response.status),
          message: String(error.message || "The weaviate-auth broker answered HTTP " + response.status + "."),
        };
      }
    } catch (exc) {
      result = {
        ok: false,
        code: "broker_unavailable",
        message: "This page could not reach the weaviate-auth broker (" + (exc && exc.name) + ").",
      };
    }
    model.send({ event: "posted", id: msg.id, ...result });
  }

  function onMessage(msg) {
    if (!msg || msg.id !== pending) return; // another view's request
    if (msg.event === "post") {
      pending = null;
      post(msg);
    } else if (msg.event === "clear") {
      pending = null;
      clear();
    } // "hold": the kernel asks the user first; the typed values wait in their fields
  }

  button.addEventListener("click", () => submit());
  const listeners = [
    ["change:fields", renderFields],
    ["change:module_keys", renderFields],
    ["change:label", renderButton],
    ["change:disabled", renderButton],
    ["change:broker", check],
    ["msg:custom", onMessage],
  ];
  for (const [name, listener] of listeners) model.on(name, listener);
  renderFields();
  renderButton();
  check();
  return () => {
    clear();
    for (const [name, listener] of listeners) model.off(name, listener);
  };
}

export default { render };
