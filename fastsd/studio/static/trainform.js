// fastsd studio: the training form: the chosen mode's options only, the session's defaults, the CPU when no GPU.
"use strict";

const label = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

function fieldInput(f, spec) {
  if (f.name === "mode") {
    return el("select", { name: f.name, "aria-label": label(f.name) }, ...spec.modes.map((m) => el("option", { value: m, selected: m === f.default }, m)));
  }
  if (f.type === "bool") {
    const input = el("select", { name: f.name, "aria-label": label(f.name) }, el("option", { value: "" }, "default"), el("option", { value: "yes" }, "yes"), el("option", { value: "no" }, "no"));
    if (f.name === "cpu" && !spec.gpu) input.value = "yes"; // no GPU here: the CPU is the only way
    return input;
  }
  if (f.name === "memory_preset") {
    return el("select", { name: f.name, "aria-label": label(f.name) }, el("option", { value: "" }, "none"), ...spec.presets.map((p) => el("option", { value: p.name }, p.name)));
  }
  const input = el("input", { name: f.name, "aria-label": label(f.name), type: f.type === "str" || f.type === "list" ? "text" : "number", step: f.type === "float" ? "any" : "1", placeholder: "default" });
  if (f.default !== null && f.default !== undefined && f.default !== 0) input.value = f.default;
  return input;
}

function buildTrainForm(spec) {
  const form = $("train-form");
  form.textContent = "";
  if (!spec) return;
  state.form = spec;
  if (!spec.gpu) form.append(el("p", { class: "note", id: "no-gpu" }, 'No GPU found on this machine: training runs on the CPU (slow), so "Cpu" is set to yes.'));
  for (const f of spec.fields) {
    form.append(el("label", { class: "field", "data-modes": f.modes.join(" ") }, el("span", {}, label(f.name)), fieldInput(f, spec), el("small", {}, `${f.flag}: ${f.help}`)));
  }
  form.elements.mode.addEventListener("change", () => showMode(form.elements.mode.value));
  showMode(form.elements.mode.value);
  const table = $("presets");
  table.textContent = "";
  table.append(el("tr", {}, el("th", {}, "preset"), el("th", {}, "gradient checkpointing"), el("th", {}, "attention"), el("th", {}, "frozen parts off the GPU")));
  for (const p of spec.presets) table.append(el("tr", {}, el("td", {}, p.name), el("td", {}, p.gradient_checkpointing), el("td", {}, p.attention), el("td", {}, p.offload_frozen ? "yes" : "no")));
}

// Only the chosen mode's options are shown (and sent): `fastsd train` refuses the other mode's.
function showMode(mode) {
  for (const field of $("train-form").querySelectorAll("label.field")) field.hidden = !field.dataset.modes.split(" ").includes(mode);
}

function trainOptions() {
  const options = {};
  const form = $("train-form");
  for (const f of state.form.fields) {
    const input = form.elements[f.name];
    const value = input.value;
    // Only what the user set (it fills in its own defaults), and only for the chosen mode.
    if (input.closest("label").hidden || value === "" || (f.default !== null && f.default !== undefined && value === String(f.default))) continue;
    options[f.name] = f.type === "bool" ? value === "yes" : f.type === "int" ? parseInt(value, 10) : f.type === "float" ? parseFloat(value) : value;
  }
  return options;
}
