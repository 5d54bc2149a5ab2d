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

// ---- the company's lists, by name (/local/lists: owners, buyers, traffic sources, dispositions) ------------

let lists = { owners: [], buyers: [], traffic_sources: [], dispositions: [] };

async function loadLists() {
  if (!company()) { renderLists(); return; }
  try {
    lists = await api("GET", "/local/lists");
  } catch (e) {
    lists = { owners: [], buyers: [], traffic_sources: [], dispositions: [] };
    showAlert(`Could not load the company's schedules, offers and lists: ${e.message}`);
  }
  for (const o of lists.owners) ownerNames[`${o.type}:${o.id}`] = o.name;
  renderLists();
}

const option = (value, text) => el("option", { value, text });

function renderLists() {
  renderOwnerSelect();
  const schedules = lists.owners.filter((o) => o.type === "schedule");
  for (const select of document.querySelectorAll("select.schedule-list")) {
    const first = select.options[0].textContent;
    select.replaceChildren(option("", first), ...schedules.map((o) => option(o.id, o.name)));
  }
  const copy = $("lm-copy_from");
  copy.replaceChildren(option("", "Don't copy"),
    ...["schedule", "offer"].map((type) => el("optgroup", { label: type === "schedule" ? "Schedules" : "Offers" },
      ...lists.owners.filter((o) => o.type === type).map((o) => option(`${o.type}:${o.id}`, o.name)))));
  $("def-traffic_source_id").replaceChildren(option("", "None"), ...lists.traffic_sources.map((t) => option(t.id, t.name)));
  const checkboxes = (id, items, name) => $(id).replaceChildren(...(items.length ? items.map((item) => {
    const value = typeof item === "string" ? item : item.id;
    const text = typeof item === "string" ? item : item.name;
    return el("label", { class: "inline" }, el("input", { type: "checkbox", value, "data-list": name }), ` ${text}`);
  }) : [el("span", { class: "muted", text: "None in this company" })]));
  checkboxes("def-buyers", lists.buyers, "buyers");
  checkboxes("scrub-dispositions", lists.dispositions, "dispositions");
  applyScope();
}

function ownerType() {
  const checked = document.querySelector("input[name='owner-type']:checked");
  return checked ? checked.value : "";
}

// Nothing is chosen for the user: the owner list fills once "Upload Leads To" is picked, starting on "Choose ...".
function renderOwnerSelect() {
  const type = ownerType();
  const select = $("owner");
  $("owner-label").textContent = type === "offer" ? "Select Offer" : type === "schedule" ? "Select Schedule" : "Select Schedule or Offer";
  if (!company()) {
    select.replaceChildren(option("", "Set the company first"));
    select.disabled = true;
  } else if (!type) {
    select.replaceChildren(option("", "Choose “Upload Leads To” first"));
    select.disabled = true;
  } else {
    const owners = lists.owners.filter((o) => o.type === type);
    select.replaceChildren(option("", owners.length ? `Choose a ${type}…` : `This company has no ${type}s`),
      ...owners.map((o) => option(o.id, o.name)));
    select.disabled = !owners.length;
  }
  // Options that apply to schedule imports only are shown for them only.
  for (const node of document.querySelectorAll(".schedule-only")) node.hidden = type !== "schedule";
}

// Dialed, connected, converted, an existing lead and dispositions need a scope: off (and unchecked) without one.
function applyScope() {
  const none = scrubScope() === "none";
  for (const input of document.querySelectorAll(".scoped input, #scrub-dispositions input")) {
    input.disabled = none;
    if (none) input.checked = false;
  }
}

const scrubScope = () => (document.querySelector("input[name='scrub-scope']:checked") || { value: "none" }).value;
const radio = (name) => (document.querySelector(`input[name='${name}']:checked`) || {}).value;
const checkedValues = (id) => [...$(id).querySelectorAll("input:checked")].map((i) => i.value);
const csvList = (id) => $(id).value.split(",").map((v) => v.trim()).filter(Boolean);

// ---- additional data: token/value rows ------------------------------------------------------------------

function addDataRow(key = "", value = "") {
  const tbody = $("additional-data").tBodies[0];
  const n = tbody.rows.length + 1;
  const remove = el("button", { type: "button", class: "link", text: "Remove", "aria-label": `Remove token ${n}` });
  remove.addEventListener("click", () => remove.closest("tr").remove());
  const k = el("input", { type: "text", "data-kv": "key", "aria-label": `Token ${n} name`, maxlength: "200" });
  const v = el("input", { type: "text", "data-kv": "value", "aria-label": `Token ${n} value` });
  k.value = key;
  v.value = value;
  tbody.append(el("tr", {}, el("td", {}, k), el("td", {}, v), el("td", {}, remove)));
  return k;
}

function additionalData() {
  const out = {};
  for (const tr of $("additional-data").tBodies[0].rows) {
    const key = tr.querySelector("[data-kv='key']").value.trim();
    if (key) out[key] = tr.querySelector("[data-kv='value']").value;
  }
  return out;
}

// ---- step 1: create + upload ------------------------------------------------------------------

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

// The request holds what the user chose; every other option keeps the API's default.
function buildRequest() {
  const type = ownerType();
  const scope = scrubScope();
  const scrub = { scope };
  for (const k of ["existing", "dialed", "connected", "converted", "opted_out", "blocked"]) scrub[k] = $(`scrub-${k}`).checked;
  const dispositions = checkedValues("scrub-dispositions");
  if (dispositions.length) scrub.dispositions = dispositions;
  const lm = {
    expire_existing: $("lm-expire_existing").checked,
    existing_leads: radio("existing") || "update",
    opt: $("lm-opt").value || null,
    block: $("lm-block").value || null,
    hours_until_expiration: numberOrNull("lm-hours_until_expiration"),
    max_contact_attempts: numberOrNull("lm-max_contact_attempts"),
    move_to_schedule_id: numberOrNull("lm-move_to_schedule_id"),
    add_to_schedule_id: numberOrNull("lm-add_to_schedule_id"),
  };
  if (type === "schedule") {
    lm.manage_schedule = radio("manage") || "nothing";
    lm.schedule_leads = $("lm-schedule_leads").checked;
    const copy = $("lm-copy_from").value;
    if (copy) {
      const [ctype, cid] = copy.split(":");
      lm.copy_to_this_schedule_from = { type: ctype, id: Number(cid) };
    }
  }
  const defaults = {
    traffic_source_id: numberOrNull("def-traffic_source_id"),
    buyer_ids: checkedValues("def-buyers").map(Number),
    lead_priority: numberOrNull("def-lead_priority"),
    sub_id: $("def-sub_id").value.trim() || null,
  };
  const validations = {
    require_email: $("val-require_email").checked,
    valid_email: $("val-valid_email").checked,
    mobile_only: $("val-mobile_only").checked,
    required_tokens: csvList("val-required_tokens"),
    allowed_countries: csvList("val-allowed_countries"),
  };
  const body = {
    owner: { type, id: Number($("owner").value) }, preview: true, scrub, lead_management: lm, defaults,
    additional_data: additionalData(), validations,
    dry_run: $("opt-dry_run").checked,
    phone_validation: $("opt-phone_validation").value,
    duplicates: $("opt-duplicates").value,
  };
  const country = $("opt-default_country").value.trim();
  if (country) body.default_country = country;
  const cap = numberOrNull("opt-max_concurrency");
  if (cap !== null) body.max_concurrency = cap;
  const name = $("name").value.trim();
  if (name) body.name = name;
  return body;
}

// ---- errors at their fields, all at once ----------------------------------------------------------------

const LABELS = { owner: "Upload Leads To", "owner.id": "Select Schedule or Offer", file: "CSV File" };

// The element an API field path (e.g. "defaults.buyer_ids.0", "lead_management.opt") is shown at: the closest
// [data-field] going up the path.
function fieldHolder(field) {
  const parts = String(field || "").split(".");
  while (parts.length) {
    const node = document.querySelector(`[data-field="${parts.join(".")}"]`);
    if (node) return node;
    parts.pop();
  }
  return null;
}

function clearFieldErrors() {
  for (const p of document.querySelectorAll(".field-error")) p.remove();
  for (const n of document.querySelectorAll(".invalid")) n.classList.remove("invalid");
  for (const n of document.querySelectorAll("[aria-invalid]")) { n.removeAttribute("aria-invalid"); n.removeAttribute("aria-describedby"); }
  $("form-errors").hidden = true;
}

let errorSeq = 0;
function showFieldErrors(errors) {
  clearFieldErrors();
  const summary = [];
  for (const { field, message } of errors) {
    const holder = fieldHolder(field);
    const label = holder ? (holder.querySelector("legend, .label") || holder).textContent.trim().split("\n")[0].trim()
      : LABELS[field] || field;
    summary.push(el("li", {}, field ? `${label || field}: ` : "", message));
    if (!holder) continue;
    const id = `field-error-${++errorSeq}`;
    holder.classList.add("invalid");
    const p = el("p", { class: "field-error", id, text: message });
    if (holder.tagName === "FIELDSET") holder.querySelector("legend").after(p); else holder.append(p);
    for (const control of holder.querySelectorAll("input, select")) {
      if (control.closest("[data-field]") !== holder && holder.tagName === "FIELDSET") continue;
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", id);
    }
  }
  const box = $("form-errors");
  box.replaceChildren(el("b", { text: errors.length === 1 ? "Please fix this:" : `Please fix these ${errors.length} things:` }),
    el("ul", { class: "problems" }, ...summary));
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

// A change in a group takes back the errors shown in it (a contradiction's error sits at one of its fields); the
// summary goes when no error is left.
function onFormEdited(ev) {
  const group = ev.target.closest("#import-form > fieldset, #import-form > details") || ev.target.closest("[data-field]");
  if (!group || !group.querySelector(".field-error")) return;
  for (const p of group.querySelectorAll(".field-error")) p.remove();
  for (const n of group.querySelectorAll(".invalid")) n.classList.remove("invalid");
  group.classList.remove("invalid");
  for (const n of group.querySelectorAll("[aria-invalid]")) { n.removeAttribute("aria-invalid"); n.removeAttribute("aria-describedby"); }
  if (!document.querySelector("#import-form .field-error")) $("form-errors").hidden = true;
}

// An API problem: per-field errors when it carries them, else its sentence (at the field its code names).
function problemErrors(e) {
  const body = e.body || {};
  if (Array.isArray(body.errors) && body.errors.length) return body.errors;
  const at = { unknown_owner: "owner", unknown_buyer: "defaults.buyer_ids", unknown_traffic_source: "defaults.traffic_source_id",
    file_too_large: "file" }[body.code];
  return [{ field: at || "", message: e.message }];
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

const megabytes = (bytes) => `${(bytes / 1024 ** 2).toLocaleString("en-US", { maximumFractionDigits: 1 })} MB`;

async function onSubmit(ev) {
  ev.preventDefault();
  showAlert("");
  clearFieldErrors();
  const file = $("file").files[0];
  const missing = [];
  if (!company()) missing.push({ field: "", message: "Set the company (a number) at the top right." });
  if (!ownerType()) missing.push({ field: "owner", message: "Choose whether the leads go to a schedule or an offer." });
  else if (!$("owner").value) missing.push({ field: "owner.id", message: `Choose the ${ownerType()} to upload to.` });
  if (!file) missing.push({ field: "file", message: "Choose the CSV file to import." });
  if (missing.length) return showFieldErrors(missing);
  const button = $("submit");
  button.disabled = true;
  try {
    $("submit-status").textContent = "Creating the import…";
    try {
      current = await api("POST", "/imports", buildRequest());
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) return showFieldErrors(problemErrors(e));
      throw e;
    }
    if (file.size > current.upload.max_bytes) {
      await api("POST", `/imports/${current.id}/cancel`).catch(() => {});
      return showFieldErrors([{ field: "file", message: `The file is ${megabytes(file.size)}; an import takes at most ${megabytes(current.upload.max_bytes)}. Split it into smaller files.` }]);
    }
    $("submit-status").textContent = `Uploading ${file.name}…`;
    await upload(current.upload.post, file);
    $("submit-status").textContent = "Reading the file and running every rule on it…";
    current = await waitFor(current.id, (r) => !["awaiting_upload", "queued", "splitting"].includes(r.status));
    rememberUrl(current);
    if (current.status === "awaiting_confirmation") await showPreview();
    else if (FINAL.includes(current.status)) showResult(current);
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

function countRows(id, counts, empty, words = true) {
  const tbody = $(id).tBodies[0];
  tbody.replaceChildren();
  const entries = Object.entries(counts || {}).filter(([, n]) => n).sort((a, b) => b[1] - a[1]);
  if (!entries.length) tbody.append(el("tr", {}, el("td", { class: "muted", text: empty })));
  for (const [code, n] of entries) {
    tbody.append(el("tr", {}, el("td", {}, words ? inWords(code) : code), el("td", { class: "num", text: fmt(n) })));
  }
}

const EXISTING_WORDS = { update: "updated with the row's values", skip: "kept as they are (row rejected)",
  expire: "expired, then a new lead created", move: "moved to another schedule, then a new lead created" };

function renderTotals(t) {
  $("pv-totals").hidden = !t;
  if (!t) return;
  const scope = $("pv-scope");
  if (t.whole_file) {
    scope.textContent = `The whole file: ${fmt(t.rows)} rows.`;
    scope.className = "scope";
  } else {
    scope.textContent = `A sample: the totals are for the first ${fmt(t.rows)} rows of about ${fmt(t.estimated_file_rows)} `
      + "(the rest of the file is read when the import runs).";
    scope.className = "scope sample";
  }
  $("pv-created").textContent = fmt(t.created);
  $("pv-updated").textContent = fmt(t.updated);
  $("pv-rejected").textContent = fmt(t.rejected);
  $("pv-rows").textContent = t.whole_file ? fmt(t.rows) : `~${fmt(t.estimated_file_rows)}`;
  $("pv-rows-label").textContent = t.whole_file ? "rows in file" : `rows in file (first ${fmt(t.rows)} previewed)`;
  $("pv-created-label").textContent = current && current.dry_run ? "leads would be created (dry run: none will)" : "leads would be created";
  countRows("pv-rejections", t.rejections, "No row would be rejected");
  const tbody = $("pv-existing").tBodies[0];
  tbody.replaceChildren();
  const existing = Object.entries(t.existing_leads || {}).filter(([, n]) => n);
  if (!existing.length) tbody.append(el("tr", {}, el("td", { class: "muted", text: "No row has a live lead on this owner" })));
  for (const [what, n] of existing) tbody.append(el("tr", {}, el("td", { text: EXISTING_WORDS[what] || what }), el("td", { class: "num", text: fmt(n) })));
  countRows("pv-warnings", t.warnings, "No warnings");
}

function renderPreviewRows(p) {
  const thead = $("preview-rows").tHead;
  thead.replaceChildren(el("tr", {}, el("th", { scope: "col", text: "Row" }), el("th", { scope: "col", text: "Outcome" }),
    ...p.header.map((h) => el("th", { scope: "col", text: h }))));
  const rows = $("preview-rows").tBodies[0];
  rows.replaceChildren();
  for (const r of p.rows) {
    const ok = r.outcome === "accepted";
    const label = !ok ? "rejected" : r.existing_lead === "update" ? "updates a lead" : "creates a lead";
    const extra = r.existing_lead && r.existing_lead !== "update" ? ` Existing lead: ${EXISTING_WORDS[r.existing_lead] || r.existing_lead}.` : "";
    const note = ok ? `${r.caller_id || ""}${r.warnings && r.warnings.length ? ` · warnings: ${r.warnings.map((w) => WORDS[w] || w).join("; ")}` : ""}${extra}`
      : `${WORDS[r.reason] || r.reason}: ${r.message || ""}`;
    const outcome = el("td", { class: "outcome" }, el("span", { class: `badge ${ok ? "ok" : "bad"}`, text: label }),
      el("small", { text: note }));
    const values = p.header.map((h) => el("td", { text: (r.values || {})[h] ?? "" }));
    rows.append(el("tr", { class: ok ? "" : "rejected" }, el("td", { text: String(r.row) }), outcome, ...values));
  }
}

function renderPreview(p) {
  $("pv-encoding").textContent = p.encoding;
  $("pv-delimiter").textContent = delimiterName(p.delimiter);
  $("pv-header").textContent = p.header.join(", ");
  renderTotals(p.totals);
  renderPreviewRows(p);
}

async function showPreview() {
  const p = await api("GET", `/imports/${current.id}/preview`);
  $("preview-name").textContent = current.name;
  const tbody = $("mapping").tBodies[0];
  tbody.replaceChildren();
  for (const column of p.header) {
    const target = p.proposed_mapping[column];
    const input = el("input", { type: "text", list: "targets", "data-column": column, placeholder: "skip this column",
      "aria-label": `Import the column ${column} as` });
    input.value = target || "";
    input.addEventListener("change", onMappingChanged);
    tbody.append(el("tr", {}, el("td", {}, el("code", { text: column })), el("td", {}, input)));
  }
  renderPreview(p);
  showStep("preview");
}

// A changed mapping: the preview is computed again from the uploaded file (POST /imports/{id}/preview).
let previewSeq = 0;
async function onMappingChanged() {
  const seq = ++previewSeq;
  showAlert("");
  $("pv-updating").textContent = "Computing the preview again with this mapping…";
  try {
    const p = await api("POST", `/imports/${current.id}/preview`, { column_mapping: mapping() });
    if (seq !== previewSeq) return;  // a later change is on its way
    renderPreview(p);
    $("pv-updating").textContent = "Preview updated for this mapping.";
  } catch (e) {
    if (seq === previewSeq) {
      $("pv-updating").textContent = "";
      showAlert(`This mapping cannot be used: ${e.message}`);
    }
  }
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
  let lastStatus = current.status;
  const tick = async () => {
    try {
      current = await api("GET", `/imports/${current.id}`);
      if (current.status !== lastStatus) { lastStatus = current.status; loadHistory(); }
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
  const noFile = r.status === "cancelled" && !stoppedEarly && !(r.file || {}).size_bytes;  // cancelled before its upload
  $("rs-total").textContent = noFile ? "–" : !stoppedEarly ? fmt(r.total_rows)
    : r.estimated_total_rows ? `~${fmt(r.estimated_total_rows)}` : "unknown";
  $("rs-total-label").textContent = noFile ? "rows in file (no file had arrived when it was cancelled)"
    : !stoppedEarly ? "rows in file" : `rows in file (not read from row ${fmt(r.unread_from_row)} on)`;
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
  $("company").addEventListener("change", () => { loadLists(); loadHistory(); });
  for (const r of document.querySelectorAll("input[name='owner-type']")) r.addEventListener("change", renderOwnerSelect);
  for (const r of document.querySelectorAll("input[name='scrub-scope']")) r.addEventListener("change", applyScope);
  $("add-data").addEventListener("click", () => addDataRow().focus());
  $("import-form").addEventListener("change", onFormEdited);
  $("pg-cancel").addEventListener("click", onCancelRunning);
  $("undo").addEventListener("click", onUndo);
  $("errors-more").addEventListener("click", () => loadErrors(false));
  window.addEventListener("hashchange", openFromUrl);
  Promise.all([loadLifecycle(), loadWords()]).then(openFromUrl);
  loadLists();
  loadHistory();
});
