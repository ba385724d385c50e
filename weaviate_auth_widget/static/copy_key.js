// The Keys section's "Copy key" button: on an explicit click, the browser asks this
// Jupyter server's weaviate-auth broker for the chosen profile's API key (Jupyter's
// login cookie + XSRF token; the broker refuses kernels) and writes it to the
// clipboard. The key lives in one local variable of the click handler: never in the
// widget model, the DOM, the kernel or the notebook.

function apiBase() {
  let base = "/";
  const config = document.getElementById("jupyter-config-data");
  if (config) {
    try {
      base = JSON.parse(config.textContent || "{}").baseUrl || base;
    } catch (_) {
      /* keep "/" */
    }
  } else if (document.body && document.body.dataset && document.body.dataset.baseUrl) {
    base = document.body.dataset.baseUrl;
  }
  if (!base.endsWith("/")) base += "/";
  return new URL(base + "weaviate-auth/api/", window.location.origin);
}

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function copyKey(profile) {
  const url = new URL("profiles/" + encodeURIComponent(profile) + "/copy-key", apiBase());
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-XSRFToken": xsrfToken() },
    body: "{}",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok || typeof data.api_key !== "string") {
    const error = data && data.error ? data.error.message : "HTTP " + response.status;
    throw new Error(error);
  }
  await navigator.clipboard.writeText(data.api_key);
}

function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-button widget-button weaviate-copy-key";
  button.textContent = "Copy key";
  button.title = "Copy this profile's API key to the clipboard (it is not shown)";
  const note = document.createElement("span");
  note.className = "weaviate-copy-key-note";
  note.style.marginLeft = "0.5em";
  const update = () => {
    button.disabled = !model.get("available") || !model.get("profile");
  };
  model.on("change:available", update);
  model.on("change:profile", update);
  update();
  button.addEventListener("click", async () => {
    note.textContent = "";
    try {
      await copyKey(model.get("profile"));
      note.textContent = "Copied to the clipboard.";
      model.set("copied", model.get("copied") + 1);
    } catch (exc) {
      note.textContent = "Copy failed: " + exc.message;
      model.set("failures", model.get("failures") + 1);
    }
    model.save_changes();
  });
  el.append(button, note);
}

export default { render };
