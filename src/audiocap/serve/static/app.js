// audiocap page: text search, drop-a-file captioning, similar-sound search. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
let limits = { max_upload_bytes: null, max_duration: null, captioner: true };
let previewUrl = null;

async function api(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("cannot reach the server (" + err.message + ")");
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(detail + " (HTTP " + response.status + ")");
  }
  return body;
}

function setStatus(el, text, kind) {
  el.textContent = text;
  el.className = "status" + (kind ? " " + kind : "");
}

// Calibrated models give each hit a confidence (0-1) and a match flag; older ones only a cosine.
function scoreText(hit) {
  if (hit.confidence !== null && hit.confidence !== undefined) {
    return { text: Math.round(hit.confidence * 100) + "%", value: hit.confidence,
      title: "confidence that this sound matches (calibrated)" };
  }
  if (hit.score <= 0) return { text: "no similarity", value: 0, title: "cosine similarity at or below 0" };
  return { text: hit.score.toFixed(3), value: Math.min(1, hit.score), title: "cosine similarity" };
}

function renderHits(list, hits, noCloseMatch) {
  list.replaceChildren();
  const notice = list.previousElementSibling;
  if (notice && notice.classList.contains("no-match")) notice.remove();
  if (noCloseMatch) {
    const p = document.createElement("p");
    p.className = "no-match";
    p.setAttribute("role", "status");
    p.textContent = "No close match in this library. The closest sounds:";
    list.before(p);
  }
  hits.forEach((hit, rank) => {
    const li = document.createElement("li");
    li.className = "hit" + (noCloseMatch ? " closest" : "");

    const head = document.createElement("div");
    head.className = "hit-head";
    const title = document.createElement("span");
    title.className = "hit-title";
    title.textContent = hit.id;
    const shown = scoreText(hit);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = shown.text;
    score.title = shown.title;
    head.append(title, score);

    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = Math.max(0, Math.min(1, shown.value)) * 100 + "%";
    bar.append(fill);

    const id = document.createElement("p");
    id.className = "meta";
    id.textContent = "#" + (rank + 1);
    li.append(head, bar);
    if (hit.caption) {
      const cap = document.createElement("p");
      cap.className = "reference";
      cap.textContent = "Reference caption: " + hit.caption;
      li.append(cap);
    }
    li.append(id);
    if (hit.audio_url) {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = hit.audio_url;
      audio.setAttribute("aria-label", "Play " + (hit.caption || hit.id));
      li.append(audio);
    }
    list.append(li);
  });
}

async function runSearch(event) {
  event.preventDefault();
  const text = $("search-text").value.trim();
  const status = $("search-status");
  if (!text) { setStatus(status, "Type a description first.", "error"); return; }
  const k = parseInt($("search-k").value, 10);
  setStatus(status, "Searching…", "busy");
  $("search-button").disabled = true;
  try {
    const body = await api("/v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: text, k: k }),
    });
    renderHits($("search-results"), body.results, body.no_close_match);
    setStatus(status, body.results.length + " result(s) for “" + body.query + "”", "ok");
  } catch (err) {
    $("search-results").replaceChildren();
    setStatus(status, "Search failed: " + err.message, "error");
  } finally {
    $("search-button").disabled = false;
  }
}

async function handleFile(file) {
  const status = $("caption-status");
  if (!file) return;
  if (limits.max_upload_bytes && file.size > limits.max_upload_bytes) {
    setStatus(status, file.name + " is too large (" + (file.size / 1e6).toFixed(1) +
      " MB; limit " + (limits.max_upload_bytes / 1e6).toFixed(1) + " MB).", "error");
    return;
  }
  const out = $("caption-output");
  $("caption-file").textContent = file.name;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  $("caption-audio").src = previewUrl;
  $("captions").replaceChildren();
  $("similar-results").replaceChildren();
  out.hidden = false;
  setStatus(status, "Listening to " + file.name + "…", "busy");

  const form = () => { const f = new FormData(); f.append("file", file, file.name); return f; };
  const beam = $("beam").value;
  const jobs = [api("/v1/search/audio?k=5", { method: "POST", body: form() })];
  if (limits.captioner) jobs.push(api("/v1/caption?beam=" + beam, { method: "POST", body: form() }));
  const [similar, caption] = await Promise.allSettled(jobs);

  const problems = [];
  if (caption && caption.status === "fulfilled") {
    caption.value.captions.forEach((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      $("captions").append(li);
    });
  } else if (caption) {
    problems.push("caption: " + caption.reason.message);
  } else {
    problems.push("no captioner is loaded on this server");
  }
  if (similar.status === "fulfilled") {
    renderHits($("similar-results"), similar.value.results, similar.value.no_close_match);
  }
  else problems.push("similar sounds: " + similar.reason.message);

  if (problems.length) setStatus(status, problems.join(" · "), "error");
  else setStatus(status, "Done: " + file.name, "ok");
}

function setupDropZone() {
  const zone = $("drop-zone");
  const input = $("file-input");
  input.addEventListener("change", () => handleFile(input.files[0]));
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, (e) => {
    e.preventDefault();
    zone.classList.remove("over");
  }));
  zone.addEventListener("drop", (e) => {
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) handleFile(file);
  });
}

async function loadInfo() {
  try {
    const info = await api("/v1/info");
    limits = info;
    const parts = [info.items + " sounds indexed"];
    if (!info.captioner) parts.push("no captioner loaded");
    $("server-info").textContent = parts.join(" · ");
    const lim = ["WAV, FLAC, Ogg, MP3 or AIFF"];
    if (info.max_upload_bytes) lim.push("up to " + (info.max_upload_bytes / 1e6).toFixed(0) + " MB");
    if (info.max_duration) lim.push(info.max_duration + " s max");
    $("limits").textContent = lim.join(", ") + ".";
  } catch (err) {
    $("server-info").textContent = "Server info unavailable: " + err.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", runSearch);
  setupDropZone();
  loadInfo();
});
