// Small enhancements; every page works without them.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// Confirmation for destructive buttons and forms.
document.addEventListener("click", (e) => {
  const el = e.target.closest("[data-confirm]");
  if (el && el.tagName === "BUTTON" && !confirm(el.dataset.confirm)) e.preventDefault();
});
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) e.preventDefault();
});

// Error pages: "Go back" returns to the page before, where there is one
// (the link itself leads to the server list).
document.addEventListener("click", (e) => {
  if (e.target.closest("a[data-back]") && history.length > 1) {
    e.preventDefault();
    history.back();
  }
});

// Blueprint editor: move rows, renumber, and keep the preview live.
function setupBlueprint(form) {
  const rows = form.querySelector("#overlay-rows tbody");
  const renumber = () => rows.querySelectorAll("input.pos").forEach((p, i) => { p.value = i + 1; });
  rows.addEventListener("click", (e) => {
    const row = e.target.closest("tr");
    if (e.target.classList.contains("up") && row.previousElementSibling) row.parentNode.insertBefore(row, row.previousElementSibling);
    else if (e.target.classList.contains("down") && row.nextElementSibling) row.parentNode.insertBefore(row.nextElementSibling, row);
    else return;
    renumber();
    refresh();
  });
  const preview = form.querySelector("#preview");
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const body = new URLSearchParams(new FormData(form));
      const res = await fetch(form.dataset.preview, { method: "POST", body, headers: { "X-CSRF-Token": csrf() } });
      if (res.ok) preview.textContent = await res.text();
    }, 150);
  };
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  // Picking an overlay adds it: the form saves at once, no second click.
  form.querySelector("#add_overlay")?.addEventListener("change", (e) => {
    if (e.target.value) form.requestSubmit();
  });
}

// Job page: stream the log; EventSource resumes with Last-Event-ID.
function setupJobLog(log) {
  if (log.dataset.finished === "true") return;
  const state = document.getElementById("job-state");
  const progress = document.getElementById("job-progress");
  let last = Number(log.querySelector(".line:last-child")?.dataset.seq ?? 0);
  const source = new EventSource(log.dataset.events);
  source.addEventListener("line", (e) => {
    const line = JSON.parse(e.data);
    if (line.seq <= last) return;
    last = line.seq;
    const span = document.createElement("span");
    span.className = "line " + line.stream;
    span.dataset.seq = line.seq;
    span.textContent = line.line + "\n";
    log.appendChild(span);
    log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("progress", (e) => {
    const [done, total] = e.data.split("/").map(Number);
    progress.hidden = false;
    progress.max = total;
    progress.value = done;
  });
  source.addEventListener("end", (e) => {
    source.close();
    state.textContent = e.data;
    state.className = "state state-" + e.data;
    log.dataset.finished = "true";
    document.getElementById("cancel-form")?.remove();
  });
}

// Console: send without reloading; ↑/↓ walk the persisted history.
function setupConsole(form) {
  const input = form.querySelector("#console-input");
  const output = document.getElementById("console-output");
  const history = JSON.parse(form.dataset.history || "[]");
  let cursor = history.length;
  const show = (entry) => {
    const div = document.createElement("div");
    div.className = "entry";
    const cmd = document.createElement("div");
    cmd.className = "cmd";
    cmd.textContent = "> " + entry.command;
    div.appendChild(cmd);
    const pre = document.createElement("pre");
    pre.className = entry.error ? "reply error" : "reply";
    pre.textContent = entry.error ?? entry.reply ?? "";
    div.appendChild(pre);
    output.appendChild(div);
    div.scrollIntoView({ block: "end" });
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowUp" && cursor > 0) { cursor -= 1; input.value = history[cursor]; e.preventDefault(); }
    else if (e.key === "ArrowDown") { cursor = Math.min(cursor + 1, history.length); input.value = history[cursor] ?? ""; e.preventDefault(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const command = input.value.trim();
    if (!command) return;
    input.disabled = true;
    try {
      const res = await fetch(form.action, {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf() },
        body: new URLSearchParams({ command }),
      });
      if (res.ok) {
        // Recorded on the server, RCON errors included: part of history.
        show(await res.json());
        history.push(command);
        cursor = history.length;
        input.value = "";
      } else {
        // Refused (a bad command, a lapsed session): the line stays for
        // another try.
        const body = await res.json().catch(() => null);
        show({ command, error: body?.error ?? `${res.status} ${res.statusText}` });
      }
    } catch (err) {
      show({ command, error: `the panel did not answer (${err.message})` });
    } finally {
      input.disabled = false;
      input.focus();
    }
  });
}

// Server log: replace the static tail with the live stream (which starts
// with the same tail) and keep following.
function setupServerLog(log) {
  const source = new EventSource(log.dataset.events);
  let fresh = true;
  // Each event is a batch of lines (up to 256), one text node per batch;
  // the oldest batches go once more than 5,000 lines are shown.
  let shown = 0;
  const counts = [];
  source.addEventListener("lines", (e) => {
    if (fresh) { log.textContent = ""; fresh = false; }
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    const count = e.data.split("\n").length;
    log.appendChild(document.createTextNode(e.data + "\n"));
    counts.push(count);
    shown += count;
    while (shown > 5000 && counts.length > 1) {
      shown -= counts.shift();
      log.removeChild(log.firstChild);
    }
    if (atBottom) log.scrollTop = log.scrollHeight;
  });
}

// Passkeys: a form with data-passkey ("create" or "get") asks the
// browser's authenticator when it is sent, with the panel's challenge
// from data-options (JSON) or fetched from data-options-url, and sends
// the answer in its hidden ceremony and credential fields.
const fromB64u = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const toB64u = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function publicKeyOf(options) {
  const pk = options.publicKey;
  pk.challenge = fromB64u(pk.challenge);
  if (pk.user) pk.user.id = fromB64u(pk.user.id);
  for (const c of [...(pk.excludeCredentials ?? []), ...(pk.allowCredentials ?? [])]) c.id = fromB64u(c.id);
  return pk;
}

function answerOf(cred) {
  const r = cred.response;
  const response = { clientDataJSON: toB64u(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64u(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = toB64u(r.authenticatorData);
    response.signature = toB64u(r.signature);
    if (r.userHandle) response.userHandle = toB64u(r.userHandle);
  }
  return JSON.stringify({
    id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, response,
    clientExtensionResults: cred.getClientExtensionResults(),
  });
}

function setupPasskey(form) {
  const error = form.querySelector(".passkey-error");
  const say = (text) => { error.textContent = text; };
  if (!window.PublicKeyCredential) {
    say("This browser cannot use passkeys.");
    form.querySelector("button").disabled = true;
    return;
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    say("");
    try {
      let challenge;
      if (form.dataset.options) {
        challenge = JSON.parse(form.dataset.options);
      } else {
        const res = await fetch(form.dataset.optionsUrl, {
          method: "POST",
          headers: { "Accept": "application/json", "X-CSRF-Token": form.elements.csrf.value },
        });
        const body = await res.json().catch(() => null);
        if (!res.ok) { say(body?.error ?? `${res.status} ${res.statusText}`); return; }
        challenge = body;
      }
      const publicKey = publicKeyOf(challenge.options);
      const cred = form.dataset.passkey === "create"
        ? await navigator.credentials.create({ publicKey })
        : await navigator.credentials.get({ publicKey });
      form.elements.ceremony.value = challenge.ceremony;
      form.elements.credential.value = answerOf(cred);
      form.submit();
    } catch (err) {
      say(err.name === "NotAllowedError"
        ? "No passkey was used: it was cancelled, or none of yours is for this panel."
        : `The passkey did not work: ${err.message}`);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-passkey]").forEach(setupPasskey);
  const serverLog = document.getElementById("server-log");
  if (serverLog) setupServerLog(serverLog);
  const consoleForm = document.getElementById("console-form");
  if (consoleForm) setupConsole(consoleForm);
  const form = document.getElementById("blueprint-form");
  if (form) setupBlueprint(form);
  const log = document.getElementById("job-log");
  if (log) setupJobLog(log);
});
