// The filterviz gallery: one ES module, no build step. Every page is index.html; route() draws it from the path.

const KEY_STORAGE = "filterviz.apiKey";
const FINAL = new Set(["succeeded", "failed", "canceled"]);
const POLL_MS = 500;
const RECONNECTS = 5;
const main = document.getElementById("main");

// ---- HTTP: the API key, problem+json errors -------------------------------------------------------

class ProblemError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function request(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (response.status === 401) showKeyForm();
  if (!response.ok) {
    let problem = { title: response.statusText, detail: `HTTP ${response.status}` };
    try { problem = await response.json(); } catch { /* not JSON: keep the status line */ }
    throw new ProblemError(response.status, problem);
  }
  return response;
}

const getJSON = async (path) => (await request(path)).json();
const postJSON = async (path, body) =>
  (await request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();

function showKeyForm() {
  const form = document.getElementById("key-form");
  form.hidden = false;
  form.querySelector("input").focus();
}

function installKeyForm() {
  const form = document.getElementById("key-form");
  if (sessionStorage.getItem(KEY_STORAGE)) form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = form.querySelector("input").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key); else sessionStorage.removeItem(KEY_STORAGE);
    route();
  });
}

// Images: a plain src without a key; with a key, fetched with its header (an <img> cannot send one).
async function setImage(img, url) {
  if (!sessionStorage.getItem(KEY_STORAGE)) { img.src = url; return; }
  const blob = await (await request(url)).blob();
  img.src = URL.createObjectURL(blob);
}

// ---- DOM helpers -----------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const enc = encodeURIComponent;
const layerPath = (model, layer) => `/models/${enc(model)}/layers/${enc(layer)}`;
const filterPath = (model, layer, n) => `${layerPath(model, layer)}/filters/${n}`;
const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(4));

function problemBox(error) {
  const problem = error.problem || { title: "Error", detail: String(error.message || error) };
  const items = (problem.errors || []).map((e) => el("li", { text: `${fieldOf(e.loc)}: ${e.msg}` }));
  return el("div", { class: "problem", role: "alert" },
    el("strong", { text: problem.title || "Error" }), problem.detail ? el("div", { text: problem.detail }) : null,
    items.length ? el("ul", {}, items) : null);
}

function fieldOf(loc) {
  const path = (loc || []).filter((part) => !["body", "query", "path"].includes(part));
  if (path[0] === "init" || path[0] === "file") return "image";
  return path.length ? String(path[0]) : "request";
}

// replaceChildren without the nulls that optional parts leave (it would show them as "null")
function put(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

function page(title, ...children) {
  document.title = `${title} · filterviz`;
  put(main, el("h1", { text: title }), ...children);
}

// ---- pages -------------------------------------------------------------------------------------------

async function modelsPage() {
  const models = await getJSON("/v1/models");
  const cards = models.map(modelCard);
  page("Models", el("p", { text: "Pick a model to browse its layers and render what their filters respond to." }),
    el("ul", { class: "cards" }, cards));
}

// An unavailable model (its entry was found unusable at start) has no layers to browse: its card says why, without a link.
function modelCard(m) {
  if (m.available === false) {
    return el("li", { class: "card unavailable" }, el("h2", { text: m.name }), el("p", { text: m.description }),
      el("p", { class: "missing", "data-unavailable": "true", text: `✗ unavailable: ${m.reason}` }));
  }
  return el("li", { class: "card" },
    el("h2", {}, el("a", { href: `/models/${enc(m.name)}` }, m.name)),
    el("p", { text: m.description }),
    el("p", { class: m.weights_available ? "ok" : "missing", "data-weights": String(m.weights_available) },
      m.weights_available ? "✓ weights available" : `✗ weights missing (${m.weights_file})`),
    el("p", { text: `${m.layers} layers · default size ${m.default_size}px` }));
}

async function modelPage(model) {
  const listing = await getJSON(`/v1/models/${enc(model)}/layers`);
  const rows = listing.layers.map((layer) => el("tr", {},
    el("td", {}, el("a", { href: layerPath(model, layer.name) }, layer.name)),
    el("td", { text: layer.type }),
    el("td", { text: layer.output_shape.join(" × ") }),
    el("td", { text: String(layer.filters) }),
    el("td", { text: layer.params.toLocaleString("en") })));
  page(model, el("p", { text: `Output shapes at ${listing.size.join(" × ")} pixels.` }),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, ["layer", "type", "output (C × H × W)", "filters", "params"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows))));
}

async function layerPage(model, layerName) {
  const listing = await getJSON(`/v1/models/${enc(model)}/layers`);
  const layer = listing.layers.find((l) => l.name === layerName || l.aliases.includes(layerName));
  if (!layer) throw new ProblemError(404, { title: "Not Found", detail: `no layer ${layerName} in ${model}` });
  const tiles = filterTiles(model, layer.name, layer.filters);
  const jobBox = el("div", { id: "job" });
  const form = renderForm(model, layer.name, (job) => showJob(jobBox, job, tiles));
  page(`${model} · ${layer.name}`,
    el("p", {}, el("a", { href: `/models/${enc(model)}` }, `← ${model}`),
      ` · ${layer.type}, output ${layer.output_shape.join(" × ")}, ${layer.filters} filters`),
    el("h2", { text: "Render" }), form, jobBox, el("h2", { text: "Filters" }), tiles.list);
  const jobId = new URLSearchParams(location.search).get("job");
  if (jobId) showJob(jobBox, await getJSON(`/v1/jobs/${enc(jobId)}`), tiles);
}

const TILE_LIMIT = 64;

function filterTiles(model, layer, count) {
  const tiles = new Map();
  const list = el("ul", { class: "grid", id: "filters" });
  for (let n = 0; n < Math.min(count, TILE_LIMIT); n++) {
    const frame = el("div", { class: "frame" }, "not rendered");
    const link = el("a", { href: filterPath(model, layer, n) }, frame, el("span", { text: `filter ${n}` }));
    const tile = el("li", { class: "tile", "data-filter": String(n) }, link);
    tiles.set(n, { tile, frame, link });
    list.append(tile);
  }
  if (count > TILE_LIMIT) list.append(el("li", { class: "tile", text: `… ${count - TILE_LIMIT} more: use their filter pages` }));
  return {
    list,
    fill(job) { fillTiles(tiles, model, layer, job); },
    preview(data) { previewTiles(tiles, layer, data); },
    unpreview() { unpreviewTiles(tiles); },
  };
}

// A preview event's thumbnails, each into its filter's tile, marked as in progress until the final picture comes.
function previewTiles(tiles, layer, data) {
  for (const picture of data.pictures.filter((p) => p.variant === 0 && (p.layer === layer || !p.layer))) {
    const entry = tiles.get(picture.filter);
    if (!entry || entry.frame.querySelector("img[data-rendered]")) continue;
    let img = entry.frame.querySelector("img[data-preview]");
    if (!img) {
      img = el("img", { alt: `filter ${picture.filter}, forming`, "data-preview": "true" });
      put(entry.frame, img);
    }
    img.src = picture.image;
    img.dataset.step = String(picture.step);
    entry.tile.classList.add("in-progress");
  }
}

function unpreviewTiles(tiles) {
  for (const entry of tiles.values()) {
    if (!entry.frame.querySelector("img[data-preview]")) continue;
    put(entry.frame, "not rendered");
    entry.tile.classList.remove("in-progress");
  }
}

function fillTiles(tiles, model, layer, job) {
  for (const result of job.results.filter((r) => r.variant === 0 && (!job.request.layers || r.layer === layer))) {
    const entry = tiles.get(result.filter);
    if (!entry) continue;
    const img = el("img", { alt: `filter ${result.filter}`, "data-rendered": "true" });
    setImage(img, result.url);
    put(entry.frame, img);
    entry.tile.classList.remove("in-progress");
    entry.link.href = `${filterPath(model, layer, result.filter)}?job=${enc(job.id)}`;
    entry.tile.classList.toggle("dead", result.dead);
  }
}

// ---- the render form ------------------------------------------------------------------------------------

const FIELDS = [
  { name: "filters", label: "filters", hint: "e.g. 0-3 or 0,5,9", value: "0-3" },
  { name: "method", label: "method", options: ["classic", "robust", "maco", "accentuate"] },
  { name: "objective", label: "objective", options: ["channel", "neuron", "layer", "class"] },
  { name: "steps", label: "steps", type: "number", hint: "classic 20, robust 128, maco 128, accentuate 64" },
  { name: "step_size", label: "step size", type: "number", step: "any", hint: "classic 1.0, robust/maco 0.2, accentuate 0.05" },
  { name: "size", label: "size (px)", hint: "128, or height,width" },
  { name: "seed", label: "seed", type: "number", hint: "0" },
  { name: "precision", label: "precision", options: ["fp32", "bf16"] },
  { name: "diversity", label: "diversity", type: "number", hint: "pictures per filter (1)" },
  { name: "snapshots", label: "snapshots", type: "number", hint: "a frame every N steps (0: no animation)" },
];

function fieldBox(spec) {
  const id = `field-${spec.name}`;
  const input = spec.options
    ? el("select", { id, name: spec.name }, spec.options.map((o) => el("option", { value: o, text: o })))
    : el("input", { id, name: spec.name, type: spec.type || "text", step: spec.step, min: spec.type ? "0" : null,
        placeholder: spec.hint || "", value: spec.value || null });
  return el("div", { class: "field", "data-field": spec.name },
    el("label", { for: id, text: spec.label }), input,
    el("span", { class: "error", id: `${id}-error`, role: "status" }));
}

function imageBox() {
  const preview = el("img", { class: "preview-img", id: "start-preview", alt: "start image preview", hidden: true });
  const input = el("input", { id: "field-image", name: "image", type: "file", accept: "image/png,image/jpeg" });
  input.addEventListener("change", () => {
    const file = input.files[0];
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
  });
  return el("div", { class: "field", "data-field": "image" },
    el("label", { for: "field-image", text: "start image (optional)" }), input, preview,
    el("label", { for: "field-strength", text: "strength" }),
    el("input", { id: "field-strength", name: "strength", type: "number", step: "any", placeholder: "1.0 (0 to 1]" }),
    el("span", { class: "error", id: "field-image-error", role: "status" }));
}

// On by default here: the gallery shows the pictures forming (the API's default is off).
function previewsBox() {
  return el("div", { class: "field check", "data-field": "previews" },
    el("label", { for: "field-previews" },
      el("input", { id: "field-previews", name: "previews", type: "checkbox", checked: true }), " live previews"),
    el("span", { class: "error", id: "field-previews-error", role: "status" }));
}

// Robust, maco and accentuate only: an RGBA picture whose alpha shows where the gradients were.
function transparencyBox() {
  return el("div", { class: "field check", "data-field": "transparency" },
    el("label", { for: "field-transparency" },
      el("input", { id: "field-transparency", name: "transparency", type: "checkbox" }), " transparency map"),
    el("span", { class: "error", id: "field-transparency-error", role: "status" }));
}

function renderForm(model, layer, onJob) {
  const summary = el("div", { id: "form-problem" });
  const submit = el("button", { type: "submit", id: "submit" }, "Render");
  const form = el("form", { class: "render", id: "render-form", novalidate: true },
    FIELDS.map(fieldBox), imageBox(), previewsBox(), transparencyBox(), el("div", { class: "actions" }, submit), summary);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, summary);
    submit.disabled = true;
    try {
      onJob(await postJSON("/v1/jobs", await requestBody(form, model, layer)));
    } catch (error) {
      showErrors(form, summary, error);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

async function requestBody(form, model, layer) {
  const value = (name) => form.elements[name].value.trim();
  const body = { model, layer, method: value("method"), objective: value("objective"), precision: value("precision") };
  if (body.objective === "class") delete body.layer;
  if (body.objective !== "layer" && value("filters")) body.filters = value("filters");
  for (const name of ["steps", "seed", "diversity", "snapshots"]) if (value(name)) body[name] = Number(value(name));
  if (value("step_size")) body.step_size = Number(value("step_size"));
  if (form.elements.previews.checked) body.previews = true;
  if (form.elements.transparency.checked) body.transparency = true;
  if (value("size")) {
    const sides = value("size").split(/[,x× ]+/).filter(Boolean).map(Number);
    body.size = sides.length === 1 ? sides[0] : sides;
  }
  const file = form.elements.image.files[0];
  if (file) {
    const upload = new FormData();
    upload.append("file", file);
    const image = await (await request("/v1/images", { method: "POST", body: upload })).json();
    body.init = { type: "image", image_id: image.id };
    if (value("strength")) body.init.strength = Number(value("strength"));
  }
  return body;
}

function clearErrors(form, summary) {
  put(summary);
  for (const box of form.querySelectorAll(".field")) {
    box.classList.remove("invalid");
    box.querySelector(".error").textContent = "";
  }
}

function showErrors(form, summary, error) {
  put(summary, problemBox(error));
  for (const fieldError of (error.problem && error.problem.errors) || []) {
    const box = form.querySelector(`[data-field="${fieldOf(fieldError.loc)}"]`);
    if (!box) continue;
    box.classList.add("invalid");
    box.querySelector(".error").textContent = fieldError.msg;
  }
}

// ---- a job: progress, previews, results, cancel ------------------------------------------------------------

function showJob(box, job, tiles) {
  const url = new URL(location.href);
  if (tiles && url.searchParams.get("job") !== job.id) {
    url.searchParams.set("job", job.id);
    history.replaceState(null, "", url);
  }
  const bar = el("progress", { id: "progress", max: String(job.progress.steps || 1), value: "0" });
  const status = el("span", { id: "job-status", "data-status": job.status, text: job.status });
  const stepText = el("span", { id: "job-step" });
  const preview = el("div", { id: "preview", class: "preview-strip", "aria-label": "live previews", hidden: true });
  const cancel = el("button", { type: "button", class: "secondary", id: "cancel" }, "Cancel");
  const extra = el("div", { id: "job-results" });
  const problem = el("div");
  put(box, el("section", { class: "job", "aria-label": "job" },
    el("p", {}, "Job ", el("a", { href: `/jobs/${enc(job.id)}` }, el("code", { text: job.id })), " · ", status, " ", stepText),
    bar, preview, el("div", { class: "actions" }, cancel), problem, extra));
  const update = (next) => {
    // a progress event is {step, steps}, a state event {status}, done and a poll the whole job
    job = "step" in next ? { ...job, progress: { step: next.step, steps: next.steps } } : { ...job, ...next };
    status.textContent = job.status;
    status.dataset.status = job.status;
    if (job.progress) {
      bar.max = job.progress.steps || 1;
      bar.value = job.progress.step;
      stepText.textContent = `step ${job.progress.step} of ${job.progress.steps}`;
    }
    cancel.disabled = FINAL.has(job.status);
    if (job.error) put(problem, problemBox({ problem: { title: job.error.type || "failed", detail: job.error.message } }));
    if (FINAL.has(job.status)) preview.hidden = true;
    if (job.status === "succeeded") {
      if (tiles) tiles.fill(job);
      put(extra, jobResults(job));
    } else if (FINAL.has(job.status) && tiles && tiles.unpreview) tiles.unpreview();
  };
  cancel.addEventListener("click", async () => {
    try { update(await postJSON(`/v1/jobs/${enc(job.id)}/cancel`, {})); } catch (error) { put(problem, problemBox(error)); }
  });
  update(job);
  // a preview event: the layer's tiles show it where there are tiles, else a strip of thumbnails in the job box
  const showPreview = (data) => (tiles && tiles.preview ? tiles.preview(data) : previewStrip(preview, data));
  if (!FINAL.has(job.status)) watchJob(job.id, update, showPreview);
}

function previewStrip(box, data) {
  put(box, data.pictures.map((p) => el("img", { src: p.image, "data-preview": "true",
    alt: `${p.layer || ""} filter ${p.filter}${p.variant ? `.${p.variant}` : ""}, forming` })));
  box.hidden = false;
}

function jobResults(job) {
  const { model, layer, layers } = job.request;
  const items = job.results.map((r) => el("li", { class: r.dead ? "tile dead" : "tile" },
    el("a", { href: `${filterPath(model, r.layer || layer, r.filter)}?job=${enc(job.id)}` },
      `${layers ? `${r.layer} · ` : ""}filter ${r.filter}${r.variant ? `.${r.variant}` : ""}`),
    r.dead ? el("span", { class: "tag dead", text: "dead" }) : null));
  if (layers) {  // a job of several layers: a contact sheet per layer
    return el("div", {}, el("h2", { text: "Results" }), ...job.grids.map((g) => layerGrid(job, g)),
      el("ul", { class: "grid" }, items));
  }
  const grid = el("img", { alt: "contact sheet", class: "preview-img", id: "grid-img" });
  if (job.grid_url) setImage(grid, job.grid_url);
  return el("div", {}, el("h2", { text: "Results" }), grid,
    el("p", {}, el("a", { href: job.grid_url, download: `grid-${job.id}.png` }, "download the grid")),
    el("ul", { class: "grid" }, items));
}

function layerGrid(job, g) {
  const img = el("img", { alt: `contact sheet of ${g.layer}`, class: "preview-img", "data-layer": g.layer });
  setImage(img, g.url);
  return el("section", { class: "layer-grid" }, el("h3", {}, el("a", { href: `${layerPath(job.request.model, g.layer)}?job=${enc(job.id)}` }, g.layer)),
    img, el("p", {}, el("a", { href: g.url, download: `grid-${job.id}-${g.layer}.png` }, "download the grid")));
}

// Server-sent events read with fetch (so the API key travels as a header), resumed with Last-Event-ID;
// where the API has no event stream, GET /v1/jobs/{id} is polled.
async function watchJob(id, update, preview) {
  let lastId = null;
  for (let attempt = 0; attempt < RECONNECTS; attempt++) {
    const headers = { ...authHeaders(), Accept: "text/event-stream", ...(lastId ? { "Last-Event-ID": lastId } : {}) };
    let response;
    try { response = await fetch(`/v1/jobs/${enc(id)}/events`, { headers }); } catch { break; }
    if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) break;
    const outcome = await readEvents(response, update, preview, (eventId) => { lastId = eventId; });
    if (outcome === "done") return;
  }
  await pollJob(id, update);
}

async function readEvents(response, update, preview, remember) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch { return "dropped"; }
    if (chunk.done) return "dropped";
    buffer += chunk.value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event.id) remember(event.id);
      if (event.data === null) continue;
      if (event.type === "preview") { preview(event.data); continue; }
      update(event.data);
      if (event.type === "done" || FINAL.has(event.data.status)) return "done";
    }
  }
}

function parseEvent(text) {
  const event = { type: "message", id: null, data: null };
  const data = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") event.type = value;
    else if (name === "id") event.id = value;
    else if (name === "data") data.push(value);
  }
  if (data.length) {
    try { event.data = JSON.parse(data.join("\n")); } catch { event.data = null; }
  }
  return event;
}

async function pollJob(id, update) {
  for (;;) {
    const job = await getJSON(`/v1/jobs/${enc(id)}`);
    update(job);
    if (FINAL.has(job.status)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// ---- one filter: the page to share -------------------------------------------------------------------------------

async function filterPage(model, layer, n) {
  const info = el("div", { id: "filter-info" });
  const frame = el("div", { class: "frame", id: "filter-frame" }, "looking for this filter's picture…");
  const jobBox = el("div", { id: "job" });
  const examples = el("section", { id: "examples", class: "examples" });
  page(`${model} · ${layer} · filter ${n}`,
    el("p", {}, el("a", { href: layerPath(model, layer) }, `← ${layer}`)),
    el("div", { class: "filter-view" }, frame, info), examples, jobBox);
  showExamples(examples, model, layer, n);
  const params = new URLSearchParams(location.search);
  const view = { model, layer, n, frame, info, jobBox };
  if (params.get("job")) { showFilter(view, await getJSON(`/v1/jobs/${enc(params.get("job"))}`)); return; }
  // a shared link names the picture's settings: the stable picture route answers it (from the cache, at once)
  if (params.has("method") && await showStablePicture(view)) return;
  const job = await findJob(model, layer, (r) => r.filter === n);
  if (job) { showFilter(view, job); return; }
  if (await showStablePicture(view)) return;
  frame.textContent = "not rendered yet";
  put(info, el("button", { type: "button", id: "render-filter", onclick: async () => {
    showJob(jobBox, await postJSON("/v1/jobs", { model, layer, filters: [n] }), { fill: (done) => showFilter(view, done) });
  } }, "Render this filter"));
}

// Dataset examples beside the picture: the demo set's images that excite the filter most, cut to the receptive
// field of the strongest position, with their activations. Shown at once where the layer's index exists; else a
// button starts its build (one model pass over the set) and the page waits for it.
async function showExamples(box, model, layer, n, build = false) {
  const url = `/v1/models/${enc(model)}/layers/${enc(layer)}/examples?dataset=demo&filters=${n}&build=${build}`;
  for (let tries = 0; tries < 1200; tries++) {
    const response = await fetch(url, { headers: authHeaders() });
    if (response.status === 404 && !build) {
      put(box, el("button", { type: "button", class: "secondary", id: "find-examples",
        onclick: () => showExamples(box, model, layer, n, true) }, "Find dataset examples"));
      return;
    }
    if (response.status === 202) {
      const state = await response.json();
      box.textContent = state.status === "failed" ? `dataset examples failed: ${state.error}`
        : `dataset examples: indexing the demo set (${state.done}/${state.images} images)…`;
      await new Promise((resolve) => setTimeout(resolve, 2 * POLL_MS));
      continue;
    }
    if (response.status !== 200) { box.textContent = `no dataset examples (${response.status})`; return; }
    const [entry] = (await response.json()).filters;
    put(box, el("h2", { text: "Dataset examples" }),
      el("p", { class: "example-note", text: "the demo set's images that excite this filter most (its largest activation over positions), cut to where it fired" }),
      el("ul", { class: "example-list" }, entry.examples.map((e) => {
        const img = el("img", { alt: e.image, title: `${e.image}: ${fmt(e.activation)}`, class: "example-crop" });
        setImage(img, e.crop_url);
        return el("li", {}, img, el("span", { class: "example-activation", text: fmt(e.activation) }));
      })));
    return;
  }
}

const sortedQuery = (url) => { const q = new URLSearchParams(url.split("?")[1] || ""); q.sort(); return q.toString(); };

// The stable picture route (GET /v1/pictures/...): 200 is the PNG, 202 the job that renders it.
async function showStablePicture(view) {
  const { model, layer, n, frame, info, jobBox } = view;
  const url = `/v1/pictures/${enc(model)}/${enc(layer)}/${n}.png${location.search}`;
  const response = await fetch(url, { headers: authHeaders() });
  if (response.status === 202) {
    showJob(jobBox, await response.json(), { fill: (done) => showFilter(view, done) });
    return true;
  }
  if (response.status !== 200) return false;
  const img = el("img", { alt: `filter ${n}`, "data-rendered": "true", id: "filter-img", src: URL.createObjectURL(await response.blob()) });
  put(frame, img);
  const wanted = sortedQuery(url);
  const job = await findJob(model, layer, (r) => r.filter === n && r.picture_url && sortedQuery(r.picture_url) === wanted);
  if (job) showFilter(view, job);
  else put(info, el("p", { id: "from-cache", text: "from the picture cache" }),
    el("p", {}, el("a", { href: url, download: `filter_${n}.png` }, "PNG")));
  return true;
}

async function findJob(model, layer, wanted) {
  let cursor = null;
  for (let pageNo = 0; pageNo < 3; pageNo++) {
    const listing = await getJSON(`/v1/jobs?status=succeeded&limit=50${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    const job = listing.jobs.find((j) => j.request.model === model && j.request.layer === layer && j.results.some(wanted));
    if (job || !listing.next_cursor) return job || null;
    cursor = listing.next_cursor;
  }
  return null;
}

function showFilter(view, job) {
  const { model, layer, n, frame, info } = view;
  const results = job.results.filter((r) => r.filter === n);
  if (!results.length) { frame.textContent = `job ${job.id} has no picture of filter ${n}`; return; }
  const first = results[0];
  const img = el("img", { alt: `filter ${n}`, "data-rendered": "true", id: "filter-img" });
  setImage(img, first.url);
  put(frame, img);
  const r = job.request;
  put(info, 
    first.dead ? el("p", {}, el("span", { class: "tag dead", id: "dead", text: "dead filter" }),
      " silent on the start image and on the final picture") : null,
    el("dl", { class: "facts" },
      el("dt", { text: "activation" }), el("dd", { id: "activation", text: fmt(first.activation) }),
      el("dt", { text: "start activation" }), el("dd", { id: "start-activation", text: fmt(first.start_activation) }),
      el("dt", { text: "gain" }), el("dd", { text: fmt(first.activation - first.start_activation) }),
      el("dt", { text: "rendered with" }),
      el("dd", { text: `${r.method}, ${r.objective}, ${r.steps} steps, ${r.size.join("×")} px, seed ${r.seed}, ${r.precision}, start: ${r.init.type}` })),
    first.animation_url ? el("figure", {}, el("img", { id: "animation", alt: `filter ${n} forming`, src: first.animation_url }),
      el("figcaption", { text: "how it formed" })) : null,
    el("h2", { text: "Download" }),
    el("ul", {}, results.map((x) => el("li", {}, el("a", { href: x.url, download: `filter_${n}${x.variant ? `_v${x.variant}` : ""}.png` },
      `PNG${x.variant ? ` (variant ${x.variant})` : ""}`))),
      first.animation_url ? el("li", {}, el("a", { href: first.animation_url, download: `filter_${n}.webp` }, "animated WebP")) : null,
      first.picture_url ? el("li", {}, el("a", { href: first.picture_url, download: `filter_${n}.png` }, "PNG, stable URL")) : null,
      el("li", {}, el("a", { href: job.grid_url, download: `grid-${job.id}.png` }, "the job's grid")),
      el("li", {}, el("a", { href: `/jobs/${enc(job.id)}` }, "the job"))),
    el("p", {}, "Share: ", el("a", { id: "share", href: shareLink(model, layer, n, first, job) }, "this filter's link")));
}

// The link to share: the picture's settings where it has a stable URL (anyone gets it from the cache), else its job.
function shareLink(model, layer, n, picture, job) {
  const query = picture.picture_url ? picture.picture_url.split("?")[1] : `job=${enc(job.id)}`;
  return `${location.origin}${filterPath(model, layer, n)}?${query}`;
}

// ---- the job history -------------------------------------------------------------------------------------------------

async function jobsPage() {
  const params = new URLSearchParams(location.search);
  const status = params.get("status") || "";
  const cursor = params.get("cursor");
  const limit = params.get("limit") || "20";
  const query = new URLSearchParams({ limit });
  if (status) query.set("status", status);
  if (cursor) query.set("cursor", cursor);
  const listing = await getJSON(`/v1/jobs?${query}`);
  const filter = el("select", { id: "status-filter", name: "status" },
    ["", "queued", "running", "succeeded", "failed", "canceled"].map((s) =>
      el("option", { value: s, text: s || "all", selected: s === status })));
  filter.addEventListener("change", () => { location.search = filter.value ? `?status=${filter.value}` : ""; });
  const here = (more) => `?${new URLSearchParams({ ...(status ? { status } : {}), limit, ...more })}`;
  const rows = listing.jobs.map(jobRow);
  const next = listing.next_cursor
    ? el("a", { id: "next-page", href: here({ cursor: listing.next_cursor }) }, "next page →")
    : null;
  page("Jobs", el("div", { class: "pager" }, el("label", { for: "status-filter", text: "status" }), filter,
      cursor ? el("a", { id: "newest", href: here({}) }, "← newest") : null),
    el("div", { class: "table-wrap" }, el("table", { id: "jobs" },
      el("thead", {}, el("tr", {}, ["created", "job", "model · layer", "filters", "status", "progress", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows))),
    rows.length ? null : el("p", { text: "No jobs." }), el("div", { class: "pager" }, next));
}

function jobRow(job) {
  const r = job.request;
  const cancel = FINAL.has(job.status) ? null : el("button", { type: "button", class: "secondary", onclick: async () => {
    await postJSON(`/v1/jobs/${enc(job.id)}/cancel`, {});
    route();
  } }, "Cancel");
  return el("tr", { "data-status": job.status },
    el("td", { text: new Date(job.created_at).toLocaleString() }),
    el("td", {}, el("a", { href: `/jobs/${enc(job.id)}` }, job.id.slice(0, 8))),
    el("td", {}, r.layer ? el("a", { href: `${layerPath(r.model, r.layer)}?job=${enc(job.id)}` }, `${r.model} · ${r.layer}`)
      : r.layers ? el("a", { href: `/jobs/${enc(job.id)}` }, `${r.model} · ${r.layers.length} layers`) : r.model),
    el("td", { text: r.filters ? compactFilters(r.filters) : r.layers ? compactFilters(r.layers[0].filters) : "–" }),
    el("td", { text: job.status }),
    el("td", { text: `${job.progress.step}/${job.progress.steps}` }),
    el("td", {}, cancel));
}

function compactFilters(filters) {
  return filters.length > 6 ? `${filters.slice(0, 5).join(", ")}, … (${filters.length})` : filters.join(", ");
}

async function jobPage(id) {
  const job = await getJSON(`/v1/jobs/${enc(id)}`);
  const box = el("div", { id: "job" });
  const r = job.request;
  page(`Job ${id.slice(0, 8)}`,
    r.layer ? el("p", {}, el("a", { href: `${layerPath(r.model, r.layer)}?job=${enc(id)}` }, `${r.model} · ${r.layer}`)) : null, box);
  showJob(box, job, null);
}

// ---- routing ------------------------------------------------------------------------------------------------------------

const ROUTES = [
  [/^\/$/, () => modelsPage()],
  [/^\/jobs\/?$/, () => jobsPage()],
  [/^\/jobs\/([^/]+)$/, (m) => jobPage(m[1])],
  [/^\/models\/([^/]+)\/layers\/([^/]+)\/filters\/(\d+)$/, (m) => filterPage(m[1], m[2], Number(m[3]))],
  [/^\/models\/([^/]+)\/layers\/([^/]+)$/, (m) => layerPage(m[1], m[2])],
  [/^\/models\/([^/]+)$/, (m) => modelPage(m[1])],
];

async function route() {
  const path = location.pathname;
  for (const [pattern, draw] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    try {
      await draw(match.slice(0).map((part, i) => (i ? decodeURIComponent(part) : part)));
    } catch (error) {
      page("Something went wrong", problemBox(error));
    }
    return;
  }
  page("Not found", el("p", {}, `No page at ${path}. `, el("a", { href: "/" }, "Back to the models")));
}

installKeyForm();
route();
