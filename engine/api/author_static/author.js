// cdsrules author page: fill the form (by hand or from a rule's example), POST /v1/evaluate, show
// the answer. Plain DOM and textContent only: nothing from a rule or a response is parsed as HTML.
"use strict";

const EXAMPLES = JSON.parse(document.getElementById("examples-data").textContent);
const TITLES = JSON.parse(document.getElementById("titles-data").textContent);
const NUMBERS = ["age_years", "weight_kg", "height_cm", "serum_creatinine_mg_dl", "egfr_ml_min_1_73m2"];
const FLAGS = ["pregnant", "breastfeeding", "on_dialysis"];
const LISTS = ["conditions", "co_medications", "allergies"];
const form = document.getElementById("patient-form");
const result = document.getElementById("result");
let extra = {}; // patient fields of a loaded example that the form has no input for

function field(name) { return document.getElementById("f-" + name); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// one list item per line: "{...}" is JSON, digits are an RxNorm code, anything else is a name/text
function parseLine(line, asDrug) {
  const text = line.trim();
  if (!text) return null;
  if (text.startsWith("{")) return JSON.parse(text);
  if (asDrug) return /^[0-9]{1,9}$/.test(text) ? { rxcui: text } : { name: text };
  return text;
}

function showLine(item) {
  if (typeof item === "string") return item;
  if (item && Object.keys(item).length === 1 && item.name) return item.name;
  if (item && Object.keys(item).length === 1 && item.rxcui) return item.rxcui;
  return JSON.stringify(item);
}

function buildRequest() {
  const patient = { ...extra };
  for (const name of NUMBERS) {
    const v = field(name).value.trim();
    if (v !== "") patient[name] = Number(v);
  }
  if (field("sex").value) patient.sex = field("sex").value;
  for (const name of FLAGS) {
    const v = field(name).value;
    if (v !== "") patient[name] = v === "true";
  }
  patient.hepatic_impairment = field("hepatic_impairment").value;
  for (const name of LISTS) {
    const items = field(name).value.split("\n").map((l) => parseLine(l, name !== "conditions")).filter((x) => x !== null);
    if (items.length) patient[name] = items;
  }
  return { patient, drug: { name: field("drug").value, action: field("action").value } };
}

function loadExample(index) {
  const ex = EXAMPLES[index];
  form.reset();
  extra = {};
  const p = ex.patient;
  for (const [key, value] of Object.entries(p)) {
    if (NUMBERS.includes(key)) field(key).value = value;
    else if (key === "sex" || key === "hepatic_impairment") field(key).value = value;
    else if (FLAGS.includes(key)) field(key).value = value === null ? "" : String(value);
    else if (LISTS.includes(key)) field(key).value = value.map(showLine).join("\n");
    else extra[key] = value;
  }
  field("drug").value = ex.drug;
  field("action").value = ex.action;
  const note = field("extra");
  note.hidden = Object.keys(extra).length === 0;
  note.textContent = "Also sent from the example: " + JSON.stringify(extra);
  form.scrollIntoView({ behavior: "smooth" });
}

function section(title, ...children) {
  return el("section", { class: "out" }, el("h3", {}, title), ...children);
}

function render(body) {
  result.replaceChildren();
  result.append(el("p", { class: "meta" }, `decision ${body.decision_id} · rule pack ${body.ruleset.version} `,
    el("code", { id: "out-digest" }, body.ruleset.digest)));
  if (body.contraindicated) result.append(el("p", { class: "contraindicated", id: "out-contraindicated" }, "Contraindicated: no dose."));
  const dose = body.dose
    ? el("div", { id: "out-dose" },
        el("p", { class: "dose" }, `Start ${body.dose.start.dose_mg} mg ${body.dose.start.times_per_day}× daily = `,
          el("strong", { id: "out-start-total" }, `${body.dose.start.total_daily_mg} mg/day`),
          `; maximum ${body.dose.max_daily_mg} mg/day`),
        body.dose.titration ? el("p", {}, body.dose.titration) : null,
        el("p", { class: "why" }, "from " + body.dose.rule_ids.join(", ")))
    : el("p", { id: "out-dose" }, "No dose suggested.");
  result.append(section("Dose", dose));
  result.append(section(`Findings (${body.findings.length})`, el("ul", { id: "out-findings" },
    ...body.findings.map((f) => el("li", { class: "finding" },
      el("span", { class: `sev sev-${f.severity}` }, f.severity), ` ${f.category}: `, el("strong", {}, f.summary),
      el("p", {}, f.detail), el("p", { class: "why" }, f.rule_id + " · " +
        f.sources.map((s) => s.label + (s.section ? ", " + s.section : "")).join("; ")))))));
  result.append(section("Monitoring", el("ul", { id: "out-monitoring" },
    ...body.monitoring.map((m) => el("li", {}, el("strong", {}, m.code), `: ${m.prompt} (${m.when})`)))));
  if (body.missing_data.length) result.append(section("Could not check", el("p", { id: "out-missing" }, body.missing_data.join(", "))));
  if (body.unrecognized.length) result.append(section("Not recognised", el("ul", {},
    ...body.unrecognized.map((u) => el("li", {}, `${u.pointer}: ${u.value}`)))));
  result.append(section("Renal", el("p", {}, `${body.renal.value_ml_min ?? "unknown"} mL/min (${body.renal.method}), band ${body.renal.band}`)));
  const rows = body.trace.map((t) => el("tr", {},
    el("td", {}, el("code", {}, t.rule_id)), el("td", {}, t.version), el("td", {}, TITLES[t.rule_id] || ""),
    el("td", {}, Object.entries(t.matched).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", "))));
  result.append(section(`Trace: ${body.trace.length} rules fired`, el("table", { id: "out-trace" },
    el("thead", {}, el("tr", {}, el("th", {}, "rule"), el("th", {}, "version"), el("th", {}, "title"), el("th", {}, "matched on"))),
    el("tbody", {}, ...rows))));
}

function renderError(status, body) {
  result.replaceChildren(el("div", { class: "error", id: "out-error" },
    el("p", {}, `${status}: ${body.title || "request failed"}`),
    el("ul", {}, ...(body.errors || []).map((e) => el("li", {}, `${e.pointer || "/"}: ${e.message}`)))));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  let request;
  try { request = buildRequest(); } catch (err) { renderError("form", { title: String(err) }); return; }
  result.textContent = "Evaluating…";
  const response = await fetch("/v1/evaluate", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request),
  });
  const body = await response.json();
  if (response.ok) render(body); else renderError(response.status, body);
});

for (const button of document.querySelectorAll(".load-example")) {
  button.addEventListener("click", () => loadExample(Number(button.dataset.example)));
}
