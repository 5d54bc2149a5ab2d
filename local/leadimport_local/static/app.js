// The upload page of `leadimport serve`: create the import (POST /api/imports, preview on), upload the
// file to the bucket with the presigned POST, show the preview, start it, follow its progress.
// The API is the deployed one under /api; the company goes in `Authorization: Bearer dev-<id>`.
"use strict";

const API = "/api";
const POLL_MS = 500;
const $ = (id) => document.getElementById(id);

let current = null;      // the import resource being worked on
let pollTimer = null;
const ownerNames = {};   // "schedule:1" -> name, from /local/owners

// ---- HTTP -------------------------------------------------------------------------------------

function company() {
  const v = String($("company").value || "").trim();
  return /^\d+$/.test(v) ? v : "";
}

function authHeaders() {
  const c = company();
  return c ? { Authorization: `Bearer dev-${c}` } : {};
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path.startsWith("/local/") ? path : API + path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text.slice(0, 300) }; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// ---- little helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function showAlert(message, kind = "error") {
  const a = $("alert");
  a.textContent = message;
  a.className = `alert ${kind}`;
  a.hidden = !message;
  if (message) a.scrollIntoView({ block: "nearest" });
}

function showStep(step) {
  for (const id of ["details", "preview", "progress", "result"]) $(id).hidden = id !== step;
  const order = ["details", "preview", "progress", "result"];
  for (const li of document.querySelectorAll("#steps li")) {
    const i = order.indexOf(li.dataset.step), j = order.indexOf(step);
    li.className = i === j ? "active" : i < j ? "done" : "";
    if (i === j) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
  // Keyboard and screen-reader users land on the new step's heading, not on <body>.
  const heading = $(step).querySelector("h1, h2");
  if (heading) heading.focus({ preventScroll: true });
}

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return "<1s";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

const delimiterName = (d) => ({ ",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)" }[d] || d);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- owners -----------------------------------------------------------------------------------

async function loadOwners() {
  const select = $("owner");
  select.replaceChildren(el("option", { value: "", text: "Loading…" }));
  if (!company()) {
    select.replaceChildren(el("option", { value: "", text: "Set the company first" }));
    return;
  }
  try {
    const owners = await api("GET", "/local/owners");
    const groups = { schedule: el("optgroup", { label: "Schedules" }), offer: el("optgroup", { label: "Offers" }) };
    for (const o of owners) {
      ownerNames[`${o.type}:${o.id}`] = o.name;
      groups[o.type].append(el("option", { value: `${o.type}:${o.id}`, text: `${o.name} (${o.type} ${o.id})` }));
    }
    select.replaceChildren(...Object.values(groups).filter((g) => g.children.length));
    if (!owners.length) select.replaceChildren(el("option", { value: "", text: "This company has no schedules or offers" }));
  } catch (e) {
    select.replaceChildren(el("option", { value: "", text: "Could not load the owners" }));
    showAlert(e.message);
  }
}

// ---- step 1: create + upload ------------------------------------------------------------------

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function buildRequest() {
  const [type, id] = $("owner").value.split(":");
  const scrub = { scope: $("scrub-scope").value };
  for (const k of ["dialed", "connected", "converted", "opted_out", "blocked"]) scrub[k] = $(`scrub-${k}`).checked;
  const lead_management = {
    expire_existing: $("lm-expire_existing").checked,
    schedule_leads: $("lm-schedule_leads").checked,
    opt: $("lm-opt").value || null,
    block: $("lm-block").value || null,
    hours_until_expiration: numberOrNull("lm-hours_until_expiration"),
    max_contact_attempts: numberOrNull("lm-max_contact_attempts"),
  };
  const defaults = {
    traffic_source_id: numberOrNull("def-traffic_source_id"),
    lead_priority: numberOrNull("def-lead_priority"),
    sub_id: $("def-sub_id").value.trim() || null,
  };
  const body = { owner: { type, id: Number(id) }, preview: true, scrub, lead_management, defaults };
  const name = $("name").value.trim();
  if (name) body.name = name;
  return body;
}

async function upload(post, file) {
  const form = new FormData();
  for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
  form.append("file", file, file.name);  // last: S3 ignores the fields after the file
  let r;
  try {
    r = await fetch(post.url, { method: "POST", body: form });
  } catch (e) {
    throw new Error(`The upload to the bucket failed (${e.message}): is the local server still running?`);
  }
  if (!r.ok) {
    const text = await r.text();
    const m = /<Message>([^<]*)<\/Message>/.exec(text);
    throw new Error(`The bucket refused the upload: ${m ? m[1] : `HTTP ${r.status}`}`);
  }
}

async function onSubmit(ev) {
  ev.preventDefault();
  showAlert("");
  const file = $("file").files[0];
  if (!company()) return showAlert("Set the company (a number) at the top right.");
  if (!$("owner").value) return showAlert("Choose the schedule or offer to upload to.");
  if (!file) return showAlert("Choose the CSV file to import.");
  const button = $("submit");
  button.disabled = true;
  try {
    $("submit-status").textContent = "Creating the import…";
    current = await api("POST", "/imports", buildRequest());
    if (file.size > current.upload.max_bytes) {
      await api("POST", `/imports/${current.id}/cancel`).catch(() => {});
      throw new Error(`The file is ${fmt(file.size)} bytes; the limit is ${fmt(current.upload.max_bytes)}.`);
    }
    $("submit-status").textContent = `Uploading ${file.name}…`;
    await upload(current.upload.post, file);
    $("submit-status").textContent = "Reading the file…";
    current = await waitFor(current.id, (r) => !["awaiting_upload", "queued", "splitting"].includes(r.status));
    if (current.status === "awaiting_confirmation") await showPreview();
    else if (current.status === "failed") showResult(current);
    else followProgress();  // started without a preview (should not happen with preview on)
  } catch (e) {
    showAlert(e.message);
  } finally {
    button.disabled = false;
    $("submit-status").textContent = "";
  }
}

async function waitFor(id, done) {
  for (;;) {
    const r = await api("GET", `/imports/${id}`);
    if (done(r)) return r;
    await sleep(POLL_MS);
  }
}

// ---- step 2: preview --------------------------------------------------------------------------

async function showPreview() {
  const p = await api("GET", `/imports/${current.id}/preview`);
  $("preview-name").textContent = current.name;
  $("pv-encoding").textContent = p.encoding;
  $("pv-delimiter").textContent = delimiterName(p.delimiter);
  $("pv-header").textContent = p.header.join(", ");

  const tbody = $("mapping").tBodies[0];
  tbody.replaceChildren();
  for (const column of p.header) {
    const target = p.proposed_mapping[column];
    const input = el("input", { type: "text", list: "targets", "data-column": column, placeholder: "skip this column",
      "aria-label": `Import the column ${column} as` });
    input.value = target || "";
    tbody.append(el("tr", {}, el("td", {}, el("code", { text: column })), el("td", {}, input)));
  }

  const thead = $("preview-rows").tHead;
  thead.replaceChildren(el("tr", {}, el("th", { text: "Row" }), el("th", { text: "Outcome" }),
    ...p.header.map((h) => el("th", { text: h }))));
  const rows = $("preview-rows").tBodies[0];
  rows.replaceChildren();
  for (const r of p.rows) {
    const ok = r.outcome === "accepted";
    const note = ok ? (r.warnings && r.warnings.length ? `warnings: ${r.warnings.join(", ")}` : r.caller_id || "")
      : `${r.reason}: ${r.message || ""}`;
    const outcome = el("td", { class: "outcome" }, el("span", { class: `badge ${ok ? "ok" : "bad"}`, text: r.outcome }),
      el("small", { text: note }));
    const values = p.header.map((h) => el("td", { text: (r.values || {})[h] ?? "" }));
    rows.append(el("tr", { class: ok ? "" : "rejected" }, el("td", { text: String(r.row) }), outcome, ...values));
  }
  showStep("preview");
}

function mapping() {
  const m = {};
  for (const input of $("mapping").querySelectorAll("input[data-column]")) {
    const v = input.value.trim();
    m[input.dataset.column] = v || null;
  }
  return m;
}

async function onStart() {
  showAlert("");
  $("start").disabled = true;
  try {
    current = await api("POST", `/imports/${current.id}/start`, { column_mapping: mapping() });
    followProgress();
  } catch (e) {
    showAlert(e.message);
  } finally {
    $("start").disabled = false;
  }
}

async function onCancel() {
  showAlert("");
  try {
    current = await api("POST", `/imports/${current.id}/cancel`);
    showResult(current);
  } catch (e) {
    showAlert(e.message);
  }
}

// ---- step 3: progress -------------------------------------------------------------------------

// The final statuses come from the lifecycle table (leadimport.imports.status) through /local/lifecycle.
let FINAL = ["completed", "failed", "cancelled"];
async function loadLifecycle() {
  try { FINAL = (await fetch("/local/lifecycle").then((r) => r.json())).final; } catch (_) { /* keep the default */ }
}

// Final, and for a cancelled import every row counted: its chunks still queued are counted unprocessed as they
// are skipped, after the status changed, and a splitter may still be reading (the API's counts_final says when
// nothing will change any more; the CLI waits the same way).
function settled(r) {
  return FINAL.includes(r.status) && r.counts_final !== false;
}

// Each import has its own URL (#/imports/ID): a reload or a shared link opens it again.
function rememberUrl(r) {
  const hash = `#/imports/${r.id}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

async function openFromUrl() {
  const m = /^#\/imports\/([0-9a-f-]{36})$/.exec(location.hash);
  if (!m) return;
  try {
    current = await api("GET", `/imports/${m[1]}`);
    if (settled(current)) showResult(current);
    else if (current.status === "awaiting_confirmation") { await showPreview(); }
    else followProgress();
  } catch (e) {
    showAlert(e.message);
  }
}

async function loadHistory() {
  const tbody = $("history-table").tBodies[0];
  try {
    const page = await api("GET", "/imports?limit=10");
    tbody.replaceChildren();
    if (!page.items.length) tbody.append(el("tr", {}, el("td", { class: "muted", colspan: "6", text: "No imports yet" })));
    for (const r of page.items) {
      tbody.append(el("tr", {},
        el("td", {}, el("a", { href: `#/imports/${r.id}`, text: r.name || r.id })),
        el("td", { text: r.status }), el("td", { class: "num", text: fmt(r.total_rows) }),
        el("td", { class: "num", text: fmt(r.created_leads) }), el("td", { class: "num", text: fmt(r.rejected_rows) }),
        el("td", { text: r.started_at ? new Date(r.started_at).toLocaleString() : "–" })));
    }
  } catch (e) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: "6", text: `Cannot list imports: ${e.message}` })));
  }
}

async function onCancelRunning() {
  showAlert("");
  try {
    current = await api("POST", `/imports/${current.id}/cancel`);
    renderProgress(current);
  } catch (e) {
    showAlert(e.message);
  }
}

async function onUndo() {
  showAlert("");
  $("undo").disabled = true;
  try {
    current = await api("POST", `/imports/${current.id}/undo`);
    showResult(current);
    showAlert(`Undone: ${fmt(current.undone_leads || 0)} leads put back as they were.`, "info");
  } catch (e) {
    showAlert(e.message);
  } finally {
    $("undo").disabled = false;
  }
}

// The rejected rows, a page at a time: row, reason, the sentence saying why, the row's values.
let errorsCursor = null;
async function loadErrors(first) {
  const tbody = $("rs-errors").tBodies[0];
  if (first) { tbody.replaceChildren(); errorsCursor = null; }
  try {
    const page = await api("GET", `/imports/${current.id}/errors?limit=20${errorsCursor ? `&cursor=${encodeURIComponent(errorsCursor)}` : ""}`);
    if (first && !page.items.length) tbody.append(el("tr", {}, el("td", { class: "muted", colspan: "4", text: "No rejected rows" })));
    for (const e of page.items) {
      const values = Object.entries(e.values || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
      tbody.append(el("tr", {}, el("td", { class: "num", text: String(e.row) }), el("td", {}, inWords(e.reason)),
        el("td", { text: e.message }), el("td", { text: values })));
    }
    errorsCursor = page.next_cursor;
    $("errors-more").hidden = !errorsCursor;
  } catch (e) {
    showAlert(e.message);
  }
}

function followProgress() {
  rememberUrl(current);
  $("progress-name").textContent = current.name;
  showStep("progress");
  renderProgress(current);
  clearTimeout(pollTimer);
  const tick = async () => {
    try {
      current = await api("GET", `/imports/${current.id}`);
      renderProgress(current);
      if (settled(current)) return showResult(current);
    } catch (e) {
      showAlert(e.message);
    }
    pollTimer = setTimeout(tick, POLL_MS);
  };
  pollTimer = setTimeout(tick, POLL_MS);
}

// The bar never goes backwards: while the file is split its row count is an estimate (from the bytes read),
// which may drop a little; the bar then stays where it was.
let shownProgress = { id: null, value: 0 };

function renderProgress(r) {
  const done = (r.processed_rows || 0) + (r.unprocessed_rows || 0);
  if (shownProgress.id !== r.id) shownProgress = { id: r.id, value: 0 };
  shownProgress.value = Math.max(shownProgress.value, r.progress || 0);
  const pct = Math.round(shownProgress.value * 1000) / 10;
  $("bar-fill").style.width = `${pct}%`;
  $("bar").setAttribute("aria-valuenow", String(pct));
  $("pg-status").textContent = r.status;
  $("pg-processed").textContent = fmt(done);
  const estimated = r.estimated_total_rows;
  const approximate = ["queued", "splitting"].includes(r.status);
  $("pg-total").textContent = estimated == null ? "?" : `${approximate ? "~" : ""}${fmt(estimated)}`;
  $("pg-rate").textContent = r.rate_rows_per_second ? `${fmt(Math.round(r.rate_rows_per_second))} rows/s` : "–";
  $("pg-eta").textContent = duration(r.eta_seconds);
  $("pg-cancel").hidden = FINAL.includes(r.status) || r.status === "cancelled";
}

// ---- step 4: result ---------------------------------------------------------------------------

// Reason and warning codes in words (leadimport.reasons.WORDS through /local/reasons); the code stays beside them.
let WORDS = {};
async function loadWords() {
  try { WORDS = await fetch("/local/reasons").then((r) => r.json()); } catch (_) { /* codes alone */ }
}
const inWords = (code) => el("span", {}, WORDS[code] ? `${WORDS[code]} ` : "", el("code", { class: "muted", text: code }));

function countsTable(id, counts, empty) {
  const tbody = $(id).tBodies[0];
  tbody.replaceChildren();
  const entries = Object.entries(counts || {}).filter(([, n]) => n).sort((a, b) => b[1] - a[1]);
  if (!entries.length) tbody.append(el("tr", {}, el("td", { class: "muted", text: empty })));
  for (const [code, n] of entries) tbody.append(el("tr", {}, el("td", {}, inWords(code)), el("td", { class: "num", text: fmt(n) })));
}

function showResult(r) {
  clearTimeout(pollTimer);
  $("result-name").textContent = r.name;
  const badge = $("rs-status");
  badge.textContent = r.status;
  badge.className = `badge ${r.status === "completed" ? "ok" : r.status === "failed" ? "bad" : ""}`;
  $("rs-error").textContent = r.error || "";
  $("rs-error").hidden = !r.error;
  const owner = ownerNames[`${r.owner.type}:${r.owner.id}`];
  $("rs-owner").textContent = owner ? `${owner} (${r.owner.type} ${r.owner.id})` : `${r.owner.type} ${r.owner.id}`;
  const f = r.file || {};
  $("rs-file").textContent = f.encoding ? `${f.encoding}, ${delimiterName(f.delimiter)}, ${fmt(f.size_bytes)} bytes` : "–";
  $("rs-started").textContent = r.started_at ? new Date(r.started_at).toLocaleString() : "–";
  $("rs-took").textContent = r.started_at && r.finished_at
    ? duration((Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000) : "–";
  $("rs-created").textContent = fmt(r.created_leads);
  $("rs-updated").textContent = fmt(r.updated_leads || 0);
  $("rs-rejected").parentElement.classList.toggle("zero", !r.rejected_rows);
  $("rs-rejected").textContent = fmt(r.rejected_rows);
  // Stopped before its file was read to the end: the rows read are not the file's rows. The file's are estimated from
  // the bytes read, or unknown when no row was read (cancelled before the split began).
  const stoppedEarly = r.unread_from_row !== null && r.unread_from_row !== undefined;
  $("rs-read-box").hidden = !stoppedEarly;
  $("rs-read").textContent = fmt(r.total_rows);
  $("rs-total").textContent = !stoppedEarly ? fmt(r.total_rows)
    : r.estimated_total_rows ? `~${fmt(r.estimated_total_rows)}` : "unknown";
  $("rs-total-label").textContent = !stoppedEarly ? "rows in file"
    : `rows in file (not read from row ${fmt(r.unread_from_row)} on)`;
  countsTable("rs-rejections", r.rejections, "No rejected rows");
  countsTable("rs-warnings", r.warnings, "No warnings");
  $("rs-id").textContent = `import ${r.id}`;
  const link = $("errors-link");
  // A cancelled or failed import always has rows to hand back: its unprocessed rows (counted as its queued chunks
  // are skipped, possibly after this renders) and the part of the file never read.
  link.hidden = !r.rejected_rows && !r.unprocessed_rows && !["completed", "cancelled"].includes(r.status)
    && r.unread_from_row == null;
  $("undo").hidden = !(r.status === "completed" && r.undone_leads === null && !r.dry_run);
  rememberUrl(r);
  loadErrors(true);
  loadHistory();
  link.textContent = r.rejected_rows ? `Download the ${fmt(r.rejected_rows)} rejected rows (errors.csv)` : "Download errors.csv (no rejected rows)";
  showStep("result");
}

// errors.csv needs the Authorization header, so fetch it and hand the browser a file.
async function onErrorsCsv(ev) {
  ev.preventDefault();
  try {
    const r = await fetch(`${API}/imports/${current.id}/errors.csv`, { headers: authHeaders() });
    if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: `import-${current.id}-errors.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    showAlert(e.message);
  }
}

function onAgain() {
  clearTimeout(pollTimer);
  current = null;
  history.replaceState(null, "", location.pathname);
  loadHistory();
  showAlert("");
  $("file").value = "";
  showStep("details");
}

// ---- wiring -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("import-form").addEventListener("submit", onSubmit);
  $("start").addEventListener("click", onStart);
  $("cancel").addEventListener("click", onCancel);
  $("errors-link").addEventListener("click", onErrorsCsv);
  $("again").addEventListener("click", onAgain);
  $("company").addEventListener("change", () => { loadOwners(); loadHistory(); });
  $("pg-cancel").addEventListener("click", onCancelRunning);
  $("undo").addEventListener("click", onUndo);
  $("errors-more").addEventListener("click", () => loadErrors(false));
  window.addEventListener("hashchange", openFromUrl);
  Promise.all([loadLifecycle(), loadWords()]).then(openFromUrl);
  loadOwners();
  loadHistory();
});
