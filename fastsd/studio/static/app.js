// fastsd studio: a small vanilla front end over the JSON API; live state arrives by server-sent events.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const state = { name: null, events: null, snapshot: null, jobs: {}, form: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// showError and drawChart: feedback.js. An error stays next to `near` (the control used) until dismissed.
async function api(method, path, body, near) {
  const options = { method, headers: { "X-CSRF-Token": CSRF } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = (response.headers.get("content-type") || "").includes("json") ? await response.json() : {};
  if (!response.ok) {
    if (response.status === 401) location.href = "/login";
    showError(data, near);
    throw new Error(data.error || response.statusText);
  }
  return data;
}

const sessionUrl = (tail = "") => `/api/sessions/${encodeURIComponent(state.name)}${tail}`;
const fileUrl = (folder, file, bust) => sessionUrl(`/files/${folder}/${encodeURIComponent(file)}`) + (bust ? `?t=${bust}` : "");

// ---- sessions ----
async function loadSessions() {
  const { sessions } = await api("GET", "/api/sessions");
  const list = $("sessions");
  list.textContent = "";
  for (const s of sessions) {
    const steps = s.state ? `${s.state.trained_steps}/${s.state.total_steps} steps, ${s.state.prepared_images} photos` : s.error;
    list.append(el("li", {}, el("button", { type: "button", class: s.name === state.name ? "current" : "",
      onclick: () => openSession(s.name) }, s.name), el("small", {}, " " + steps + (s.export_files && s.export_files.length ? ", exported" : ""))));
  }
}

// What is on the volume comes first and is the default; the rest needs a download first.
const whereText = (m) => (m.where === "volume" ? "on the volume" : "needs a download");

async function loadModels() {
  const { models, captioners } = await api("GET", "/api/models");
  const select = $("models");
  select.textContent = "";
  for (const m of models) select.append(el("option", { value: m.id }, `${m.id} (${m.family}, ${m.resolution} px, ${whereText(m)})`));
  const captioner = $("caption-model");
  captioner.textContent = "";
  for (const c of captioners) captioner.append(el("option", { value: c.id, "data-matcher": c.matcher || c.id }, `${c.id} (${whereText(c)})`));
}

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { name: form.get("name"), model: form.get("model"), token: form.get("token") || null };
  if (form.get("resolution")) body.resolution = Number(form.get("resolution"));
  await api("POST", "/api/sessions", body, event.target.querySelector("button[type=submit]"));
  event.target.reset();
  await loadSessions();
  await openSession(body.name);
});

$("delete").addEventListener("click", async () => {
  await api("POST", sessionUrl("/delete"), { confirm: $("confirm-name").value }, $("delete"));
  closeSession();
  await loadSessions();
});

$("logout").addEventListener("submit", async (event) => {
  event.preventDefault();
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": CSRF } });
  location.href = "/login";
});

function closeSession() {
  if (state.events) state.events.close();
  state.name = null;
  $("session").hidden = true;
  $("empty").hidden = false;
}

async function openSession(name) {
  if (state.events) state.events.close();
  state.name = name;
  state.jobs = {};
  const data = await api("GET", sessionUrl());
  $("empty").hidden = true;
  $("session").hidden = false;
  $("session-name").textContent = name;
  $("confirm-name").value = "";
  buildTrainForm(data.train_form);
  render(data);
  await loadPhotos();
  await loadSessions();
  state.events = new EventSource(sessionUrl("/events"));
  state.events.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
  state.events.addEventListener("gone", () => { closeSession(); loadSessions(); });
}

// ---- live state ----
function render(data) {
  const s = data.session;
  state.snapshot = data;
  $("session-info").textContent = s.error ? s.error :
    `${s.model} (${s.family}), ${s.resolution} px, token "${s.token}"; ${s.state.prepared_images} photos, ` +
    `${s.state.captioned_images} captioned; checkpoints: ${s.checkpoints.join(", ") || "none"}`;
  $("busy").textContent = s.busy ? `Session ${s.busy}` : "idle";
  $("busy").className = s.busy ? "badge busy" : "badge";
  const jobs = s.jobs || {};
  for (const [kind, job] of Object.entries(jobs)) {
    const before = state.jobs[kind];
    if (before && before.state === "running" && job.state !== "running") jobEnded(kind, job);
  }
  state.jobs = jobs;
  renderCaptionJob(jobs.caption);
  renderTraining(data.progress, jobs.train, s);
  renderExport(jobs.export, jobs.webui, s);
  renderLogs(jobs);
}

const JOB_BUTTON = { prepare: "drop", caption: "caption", train: "train", export: "export", webui: "webui" };
function jobEnded(kind, job) {
  if (kind === "prepare") showImportResults(job);
  if (kind === "prepare" || kind === "caption") loadPhotos();
  if (job.state === "failed") showError({ error: `${kind} failed: ${job.error || "see its log"}`, hint: job.hint }, $(JOB_BUTTON[kind]));
  loadSessions();
}

function jobText(kind, job) {
  if (!job) return "";
  if (job.state === "running") return `${kind} running since ${job.started}`;
  // A stop is what the user asked for: no error text ("interrupted") to repeat.
  if (job.state === "stopped") return `${kind} stopped` + (kind === "training" ? " (Resume continues from the newest checkpoint)" : "");
  return `${kind} ${job.state}` + (job.error ? `: ${job.error}` : "") + (job.hint ? ` (${job.hint})` : "");
}

function renderCaptionJob(job) {
  const bar = $("caption-progress");
  bar.hidden = !job || job.state !== "running";
  if (job && job.progress) { bar.max = job.progress[1]; bar.value = job.progress[0]; }
  $("caption-state").textContent = jobText("captioning", job);
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "?";
  s = Math.round(s);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function renderTraining(p, job, s) {
  const running = job && job.state === "running";
  const parts = [`step ${p.step}/${p.total || "?"}`];
  if (p.stage) parts.push(`stage ${p.stage}`);
  if (p.loss !== null && p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.lr !== null && p.lr !== undefined) parts.push(`lr ${p.lr.toExponential(2)}`);
  if (running) parts.push(`ETA ${fmtSeconds(p.eta_s)}`);
  $("train-state").textContent = parts.join(" · ") + (job ? " — " + jobText("training", job) : "");
  $("stop").disabled = !running;
  $("train").disabled = running;
  const finished = s.state && s.state.total_steps > 0 && s.state.trained_steps >= s.state.total_steps;
  $("resume").disabled = running || finished || !s.checkpoints || !s.checkpoints.length;
  drawChart(p.points);
  const gallery = $("samples");
  const shown = new Set([...gallery.querySelectorAll("img")].map((img) => img.dataset.file));
  for (const file of p.samples) {
    if (shown.has(file)) continue;
    gallery.append(el("figure", {}, el("img", { src: fileUrl("samples", file, Date.now()), alt: `sample ${file.replace(".png", "")}`, "data-file": file }),
      el("figcaption", {}, file.replace(".png", ""))));
  }
  for (const img of gallery.querySelectorAll("img")) if (!p.samples.includes(img.dataset.file)) img.parentElement.remove();
}

function renderExport(job, webui, s) {
  $("export-state").textContent = jobText("export", job);
  $("webui").disabled = !(s.export_files && s.export_files.length) || (webui && webui.state === "running");
  $("webui-stop").disabled = !webui || webui.state !== "running";
  const list = $("downloads");
  list.textContent = "";
  for (const file of s.export_files || []) {
    list.append(el("li", {}, el("a", { href: sessionUrl(`/download/${encodeURIComponent(file)}`), download: file }, `Download ${file}`)));
  }
  const info = $("webui-info");
  info.textContent = "";
  if (webui && webui.state === "running" && state.webui) {
    info.append(el("p", {}, `Web UI ${webui.state}: `, el("a", { href: state.webui.url, target: "_blank", rel: "noopener" }, state.webui.url),
      ` — user ${state.webui.user}, password: ${state.webui.password}`));
  } else if (webui) {
    info.append(el("p", {}, jobText("web UI", webui)));
  }
}

function renderLogs(jobs) {
  const box = $("logs");
  for (const kind of Object.keys(jobs)) {
    let pre = box.querySelector(`pre[data-kind="${kind}"]`);
    if (!pre) { box.append(el("h4", {}, kind)); pre = el("pre", { "data-kind": kind }); box.append(pre); }
    if (box.parentElement.open) fetch(sessionUrl(`/jobs/${kind}/log`)).then((r) => r.text()).then((t) => (pre.textContent = t));
  }
}

// ---- photos ----
$("files").addEventListener("change", (event) => uploadAll([...event.target.files]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); uploadAll([...event.dataTransfer.files]); });

function uploadOne(file, row) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const bar = row.querySelector("progress"), status = row.querySelector(".status");
    xhr.open("POST", sessionUrl("/uploads"));
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      status.textContent = xhr.status === 201 ? "uploaded" : `refused: ${body.error || xhr.status}`;
      row.dataset.state = xhr.status === 201 ? "uploaded" : "refused";
      resolve(xhr.status === 201);
    };
    xhr.onerror = () => { status.textContent = "upload failed"; resolve(false); };
    xhr.send(file);
  });
}

async function uploadAll(files) {
  const list = $("uploads");
  list.textContent = "";
  const rows = files.map((file) => {
    const row = el("li", { "data-name": file.name }, el("span", { class: "name" }, file.name), " ",
      el("progress", { max: file.size || 1, value: 0 }), " ", el("span", { class: "status" }, "waiting"));
    list.append(row);
    return row;
  });
  let any = false;
  for (let i = 0; i < files.length; i++) any = (await uploadOne(files[i], rows[i])) || any;
  if (any) {
    await api("POST", sessionUrl("/import"), undefined, $("drop"));
    for (const row of rows) if (row.dataset.state === "uploaded") row.querySelector(".status").textContent = "importing…";
  }
}

function showImportResults(job) {
  for (const result of job.files || []) {
    const row = [...$("uploads").children].find((r) => r.dataset.name === result.name);
    if (!row) continue;
    row.querySelector(".status").textContent = result.status === "refused" ? `refused: ${result.reason}` : `${result.status} as ${result.photo}`;
    row.dataset.state = result.status;
  }
}

async function loadPhotos() {
  const { photos } = await api("GET", sessionUrl("/photos"));
  const grid = $("photos");
  grid.textContent = "";
  const bust = Date.now();
  for (const photo of photos) grid.append(photoCard(photo, bust));
}

function pct(v, total) { return `${(100 * v) / total}%`; }

function photoCard(photo, bust) {
  const [w, h] = photo.size;
  const [x0, y0, x1, y1] = photo.box;
  const box = el("div", { class: "crop", title: "drag to move the crop", "aria-label": `crop of ${photo.name}` });
  Object.assign(box.style, { left: pct(x0, w), top: pct(y0, h), width: pct(x1 - x0, w), height: pct(y1 - y0, h) });
  const frame = el("div", { class: "frame" }, el("img", { src: fileUrl("raw", photo.raw), alt: `original ${photo.name}`, draggable: "false" }));
  for (const [fx0, fy0, fx1, fy1] of photo.faces) {
    const face = el("div", { class: "face" });
    Object.assign(face.style, { left: pct(fx0, w), top: pct(fy0, h), width: pct(fx1 - fx0, w), height: pct(fy1 - fy0, h) });
    frame.append(face);
  }
  frame.append(box);
  dragCrop(box, frame, photo);
  const caption = el("textarea", { "aria-label": `Caption of ${photo.name}`, rows: 2 });
  caption.value = photo.caption || "";
  const score = photo.itm === null || photo.itm === undefined ? null :
    el("span", { class: photo.low ? "badge low" : "badge" }, `match ${photo.itm.toFixed(2)}${photo.low ? " low" : ""}`);
  const heat = photo.heatmap ? el("details", {}, el("summary", {}, "Heatmap"), el("img", { src: fileUrl("heatmaps", photo.heatmap, bust), alt: `heatmap ${photo.name}`, loading: "lazy" })) : null;
  return el("article", { class: "card", "data-photo": photo.name, "aria-label": `photo ${photo.name}` },
    el("div", { class: "pair" }, frame, el("img", { class: "prepared", src: fileUrl("prepared", photo.prepared, bust), alt: `prepared ${photo.name}` })),
    el("div", { class: "meta" }, el("strong", {}, photo.name), ` ${w}×${h}, ${photo.method} crop, ${photo.faces.length} face(s) `, score,
      photo.hand_written ? el("span", { class: "badge" }, "hand-written") : null),
    caption,
    el("div", { class: "row" },
      el("button", { type: "button", onclick: async (e) => { await api("POST", sessionUrl(`/photos/${photo.name}/caption`), { text: caption.value }, e.target); await loadPhotos(); } }, `Save caption of ${photo.name}`),
      el("button", { type: "button", class: "quiet", onclick: async (e) => { await api("POST", sessionUrl(`/photos/${photo.name}/delete`), {}, e.target); await loadPhotos(); } }, `Remove ${photo.name}`)),
    heat);
}

function dragCrop(box, frame, photo) {
  const [w, h] = photo.size;
  let start = null;
  box.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    box.setPointerCapture(event.pointerId);
    start = { x: event.clientX, y: event.clientY, left: box.offsetLeft, top: box.offsetTop };
  });
  box.addEventListener("pointermove", (event) => {
    if (!start) return;
    const left = Math.min(Math.max(0, start.left + event.clientX - start.x), frame.clientWidth - box.offsetWidth);
    const top = Math.min(Math.max(0, start.top + event.clientY - start.y), frame.clientHeight - box.offsetHeight);
    box.style.left = `${left}px`;
    box.style.top = `${top}px`;
  });
  box.addEventListener("pointerup", async () => {
    if (!start) return;
    start = null;
    const side = photo.box[2] - photo.box[0];
    const x = Math.min(Math.max(0, Math.round((box.offsetLeft / frame.clientWidth) * w)), w - side);
    const y = Math.min(Math.max(0, Math.round((box.offsetTop / frame.clientHeight) * h)), h - side);
    if (x === photo.box[0] && y === photo.box[1]) return;
    box.classList.add("saving");
    try { await api("POST", sessionUrl(`/photos/${photo.name}/crop`), { box: [x, y, x + side, y + side] }); } finally { await loadPhotos(); }
  });
}

// ---- captions ----
$("caption").addEventListener("click", async () => {
  const picked = $("caption-model").selectedOptions[0];
  const body = { score: $("caption-score").checked, heatmaps: $("caption-heatmaps").checked };
  if ($("caption-model").value) body.model = $("caption-model").value;
  if ($("caption-captioner").value) body.captioner = $("caption-captioner").value;
  if ($("caption-style").value) body.style = $("caption-style").value;
  if ($("caption-score").checked && picked && picked.dataset.matcher) body.score_model = picked.dataset.matcher;
  if ($("caption-template").value) body.template = $("caption-template").value;
  await api("POST", sessionUrl("/caption"), body, $("caption"));
});

// ---- training (the form: trainform.js) ----
$("train").addEventListener("click", async () => {
  const over = $("overwrite").checked;
  await api("POST", sessionUrl("/train"), { options: trainOptions(), overwrite: over }, $("train"));
  if (!over) return; // else the old run is gone: show none of it while the new one starts
  drawChart([]);
  $("samples").textContent = "";
  $("train-state").textContent = "starting over: training from the base model";
});
$("resume").addEventListener("click", () => api("POST", sessionUrl("/train"), { options: trainOptions(), resume: true }, $("resume")));
$("stop").addEventListener("click", () => api("POST", sessionUrl("/stop"), { kind: "train" }, $("stop")));

// ---- export and serve ----
$("export").addEventListener("click", () => api("POST", sessionUrl("/export"), { dtype: $("dtype").value }, $("export")));
$("webui").addEventListener("click", async () => {
  state.webui = await api("POST", sessionUrl("/webui"), { ui: $("webui-ui").value }, $("webui"));
  state.jobs.webui = { ...state.webui, state: "running" };
  if (state.snapshot) renderExport(state.jobs.export, state.jobs.webui, state.snapshot.session);
});
$("webui-stop").addEventListener("click", () => api("POST", sessionUrl("/stop"), { kind: "webui" }, $("webui-stop")));

loadModels().then(loadSessions).catch(() => {});
