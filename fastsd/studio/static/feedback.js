// fastsd studio: errors shown next to the control that caused them (kept until dismissed), and the loss chart.
"use strict";

// An error box right after `near`'s row (or at the top without one); it stays until its Dismiss is pressed.
function showError(body, near) {
  const anchor = near ? near.closest(".row, form, label, li, article") || near : null;
  const box = document.createElement("div");
  box.className = "alert";
  box.setAttribute("role", "alert");
  const strong = document.createElement("strong");
  strong.textContent = body.error || "something went wrong";
  box.append(strong);
  if (body.hint) {
    const hint = document.createElement("div");
    hint.className = "hint";
    hint.textContent = body.hint;
    box.append(hint);
  }
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => box.remove());
  box.append(dismiss);
  if (anchor) anchor.after(box);
  else document.getElementById("alert").append(box);
  box.scrollIntoView({ block: "nearest" });
  return box;
}

// The loss per step with its axes: step along x, loss along y, each with its first and last value.
const CHART = { left: 52, right: 592, top: 8, bottom: 132 };

function drawChart(points) {
  const line = document.getElementById("loss-line");
  const good = points.filter((pt) => typeof pt[1] === "number");
  const axes = document.getElementById("loss-axes");
  axes.textContent = "";
  if (!good.length) { line.setAttribute("points", ""); return; }
  const xs = good.map((pt) => pt[0]), ys = good.map((pt) => pt[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = (x) => CHART.left + ((x - x0) / (x1 - x0)) * (CHART.right - CHART.left);
  const sy = (y) => CHART.bottom - ((y - y0) / (y1 - y0)) * (CHART.bottom - CHART.top);
  line.setAttribute("points", good.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "));
  const svg = (tag, attrs, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    axes.append(node);
  };
  svg("line", { x1: CHART.left, y1: CHART.bottom, x2: CHART.right, y2: CHART.bottom, class: "axis" });
  svg("line", { x1: CHART.left, y1: CHART.top, x2: CHART.left, y2: CHART.bottom, class: "axis" });
  svg("text", { x: CHART.left - 4, y: CHART.top + 8, "text-anchor": "end", class: "tick" }, y1.toFixed(3));
  svg("text", { x: CHART.left - 4, y: CHART.bottom, "text-anchor": "end", class: "tick" }, y0.toFixed(3));
  svg("text", { x: CHART.left, y: CHART.bottom + 14, "text-anchor": "start", class: "tick" }, String(x0));
  svg("text", { x: CHART.right, y: CHART.bottom + 14, "text-anchor": "end", class: "tick" }, String(x1));
  svg("text", { x: (CHART.left + CHART.right) / 2, y: CHART.bottom + 24, "text-anchor": "middle", class: "label" }, "step");
  svg("text", { x: 12, y: (CHART.top + CHART.bottom) / 2, "text-anchor": "middle", class: "label",
    transform: `rotate(-90 12 ${(CHART.top + CHART.bottom) / 2})` }, "loss");
  document.getElementById("loss-chart").dataset.points = String(good.length);
}
