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
const SIGN_IN_POLL_MS = 300;
const SIGN_IN_TIMEOUT_MS = 600000;

/** The page's Jupyter server base URL. Its page config says it in Lab, Notebook 7 and
 *  Voilà; <body data-base-url> is the fallback: under Voilà that one is Voilà's own prefix
 *  ("<base>voila/"), not the server's, and the broker would be looked for in the wrong place. */
function pageBaseUrl() {
  const config = document.getElementById("jupyter-config-data");
  if (config) {
    try {
      const base = JSON.parse(config.textContent || "{}").baseUrl;
      if (typeof base === "string" && base) return base;
    } catch (_) {
      /* no usable page config: the body's */
    }
  }
  const fromBody = document.body && document.body.dataset ? document.body.dataset.baseUrl : "";
  return fromBody || "/";
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
  // "Sign in with <provider>": the provider's own page in a popup; the broker receives
  // the redirect and keeps the result; this page only learns that the sign-in ended
  const signIn = element("button", "waw-sign-in jupyter-button widget-button");
  signIn.type = "button";
  signIn.style.display = "none";
  actions.append(button, signIn);
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
    const offer = model.get("sign_in") || {};
    signIn.textContent = offer.label || "";
    signIn.style.display = offer.label && route === "broker" ? "" : "none";
    signIn.disabled = button.disabled;
  }

  let popup = null;
  let signInRequest = null;

  function startSignIn() {
    if (signIn.disabled || route !== "broker") return;
    // opened in the click itself, or the browser blocks it; pointed at the provider later
    popup = window.open("", "waw-sign-in", "popup,width=520,height=680");
    signInRequest = newId();
    model.send({ event: "sign_in", id: signInRequest, origin: window.location.origin });
  }

  async function followSignIn(msg) {
    if (popup && !popup.closed) popup.location.href = msg.url;
    else popup = window.open(msg.url, "waw-sign-in", "popup,width=520,height=680");
    const statusUrl = new URL("sign-in/" + encodeURIComponent(msg.sign_in), apiBase());
    const until = Date.now() + SIGN_IN_TIMEOUT_MS;
    let closedPolls = 0;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, SIGN_IN_POLL_MS));
      let state = "pending";
      try {
        const response = await fetch(statusUrl, {
          credentials: "same-origin",
          headers: { "X-XSRFToken": xsrfToken() },
          signal: deadline(CHECK_TIMEOUT_MS),
        });
        state = response.ok ? (await response.json()).status : "failed";
      } catch (_) {
        state = "pending"; // a hiccup: ask again
      }
      if (state !== "pending") break;
      // the window closed without an answer: give the callback a moment, then stop
      if (popup && popup.closed && ++closedPolls > 6) break;
    }
    if (popup && !popup.closed) popup.close();
    popup = null;
    model.send({ event: "signed_in", id: msg.id, sign_in: msg.sign_in });
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
      renderButton();
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
    if (msg && msg.id === signInRequest) {
      signInRequest = null;
      if (msg.event === "open") followSignIn(msg);
      else if (popup && !popup.closed) popup.close();
      return;
    }
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
  signIn.addEventListener("click", () => startSignIn());
  const listeners = [
    ["change:fields", renderFields],
    ["change:module_keys", renderFields],
    ["change:label", renderButton],
    ["change:disabled", renderButton],
    ["change:sign_in", renderButton],
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
