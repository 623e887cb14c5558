// openmps console: live pipeline depths, job status polling, and the storyboard hover preview.
// No inline script anywhere (the pages' Content-Security-Policy forbids it): everything hangs off
// data- attributes.
"use strict";

function pollPipelines(table) {
  const url = table.dataset.poll;
  const tick = async () => {
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.ok) {
        const body = await resp.json();
        for (const p of body.pipelines) {
          const row = table.querySelector(`tr[data-pipeline="${CSS.escape(p.id)}"]`);
          if (!row) continue;
          for (const field of ["queued", "running", "next_priority", "state"]) {
            const cell = row.querySelector(`[data-field="${field}"]`);
            if (cell) cell.textContent = p[field] === null ? "–" : String(p[field]);
          }
          const age = row.querySelector('[data-field="oldest_age_s"]');
          if (age) age.textContent = formatAge(p.oldest_age_s);
        }
        table.dataset.polled = String(Date.now());
      }
    } catch (e) { /* the next tick retries */ }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

function formatAge(s) {
  if (s === null) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function pollJob(section) {
  if (section.dataset.terminal === "true") return;
  const state = document.getElementById("job-state");
  const progress = document.getElementById("job-progress");
  const text = document.getElementById("job-progress-text");
  const tick = async () => {
    try {
      const resp = await fetch(section.dataset.status, { credentials: "same-origin" });
      if (resp.ok) {
        const job = await resp.json();
        state.textContent = job.state;
        state.className = `badge state-${job.state}`;
        progress.max = Math.max(job.progress_total, 1);
        progress.value = job.progress_done;
        text.textContent = `${job.progress_done}/${job.progress_total}`;
        if (job.terminal) { window.location.reload(); return; }
      }
    } catch (e) { /* retry */ }
    setTimeout(tick, 700);
  };
  setTimeout(tick, 700);
}

// WebVTT storyboard: cues "HH:MM:SS.mmm --> HH:MM:SS.mmm" then "sheet.jpg#xywh=x,y,w,h".
function vttTime(t) {
  const [h, m, s] = t.trim().split(":");
  return (Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000;
}

function parseVtt(text, base) {
  const cues = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/).filter((l) => l.trim() !== "");
    const at = lines.findIndex((l) => l.includes("-->"));
    if (at < 0 || at + 1 >= lines.length) continue;
    const [start, end] = lines[at].split("-->").map(vttTime);
    const [ref, frag] = lines[at + 1].split("#xywh=");
    const [x, y, w, h] = frag.split(",").map(Number);
    cues.push({ start, end, url: new URL(ref, base).href, ref, x, y, w, h });
  }
  return cues;
}

async function storyboard(box) {
  const bar = document.getElementById("storyboard-bar");
  const preview = document.getElementById("storyboard-preview");
  const caption = document.getElementById("storyboard-caption");
  const vttUrl = new URL(box.dataset.vtt, window.location.href);
  const resp = await fetch(vttUrl, { credentials: "same-origin" });
  if (!resp.ok) { caption.textContent = "storyboard unavailable"; return; }
  const cues = parseVtt(await resp.text(), vttUrl);
  const duration = Number(box.dataset.duration) || (cues.length ? cues[cues.length - 1].end : 0);
  box.dataset.cues = String(cues.length);
  const show = (clientX) => {
    const rect = bar.getBoundingClientRect();
    const frac = Math.min(Math.max((clientX - rect.left) / rect.width, 0), 0.999999);
    const t = frac * duration;
    const cue = cues.find((c) => c.start <= t && t < c.end) || cues[cues.length - 1];
    if (!cue) return;
    preview.hidden = false;
    preview.style.width = `${cue.w}px`;
    preview.style.height = `${cue.h}px`;
    preview.style.backgroundImage = `url("${cue.url}")`;
    preview.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    preview.style.left = `${Math.min(Math.max(clientX - rect.left - cue.w / 2, 0), rect.width - cue.w)}px`;
    Object.assign(preview.dataset, { t: String(Math.round(t)), sheet: cue.ref, x: String(cue.x), y: String(cue.y) });
    caption.textContent = `${(t / 1000).toFixed(2)} s → ${cue.ref} at ${cue.x},${cue.y}`;
  };
  bar.addEventListener("mousemove", (e) => show(e.clientX));
  bar.addEventListener("mouseleave", () => { preview.hidden = true; });
  box.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  const pipelines = document.getElementById("pipelines");
  if (pipelines) pollPipelines(pipelines);
  const job = document.getElementById("job");
  if (job) pollJob(job);
  const box = document.getElementById("storyboard");
  if (box) storyboard(box);
});
