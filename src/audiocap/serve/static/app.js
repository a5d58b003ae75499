// audiocap page: text search, "more like this", drop-a-file (or recorded) captioning and similar
// sounds, and zero-shot classification of a sound against labels the user types or picks.
// No build step and nothing fetched from elsewhere: everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);
let info = { max_upload_bytes: null, max_duration: null, captioner: true, max_k: 100 };
let previewUrl = null;
let lastFile = null;
let current = null;   // what the results panel shows: {kind: "text"|"like"|"upload", ...}
let captionRun = 0;   // ignore answers of superseded uploads
let resultsRun = 0;
let playable = false; // whether the browser can play the last upload
const FILE_ERRORS = ["unsupported_media_type", "bad_audio", "too_long", "too_large", "empty_file"];

// Show the upload (name + player) once the server accepted it for captioning or search.
function showUpload() {
  $("caption-output").hidden = false;
  $("caption-audio").hidden = !playable;
}

// ------------------------------------------------------------------ talking to the server

class ApiFailure extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

async function api(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (_) {
    throw new ApiFailure("The server did not answer. Check that audiocap serve is still " +
      "running, then try again.", 0, "unreachable");
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const code = body && body.error ? body.error : "error";
    throw new ApiFailure(body && body.detail ? String(body.detail) : "", response.status, code);
  }
  return body;
}

// A sentence a user can act on; never an HTTP status code.
function explain(err, doing) {
  if (!(err instanceof ApiFailure)) return "Something went wrong while " + doing + ": " + err.message;
  if (err.code === "unreachable") return err.message;
  if (err.code === "busy") return "The server is busy with other requests; try again in a moment.";
  if (err.code === "no_captioner") return "This server has no captioner, so it cannot describe recordings.";
  if (err.status >= 500 || !err.message) {
    return "The server failed while " + doing + ". Try again; if it keeps failing, the server's " +
      "log says why.";
  }
  let text = err.message.replace(/\s*\(HTTP \d+\)/g, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function setStatus(el, text, kind) {
  el.textContent = text;
  el.className = "status" + (kind ? " " + kind : "");
}

function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m + ":" + String(s % 60).padStart(2, "0");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ results

// Calibrated models give each hit a confidence (0-1) and a match flag; older ones only a cosine.
function scoreText(hit) {
  if (hit.confidence !== null && hit.confidence !== undefined) {
    return { text: Math.round(hit.confidence * 100) + "% match", value: hit.confidence,
      title: "confidence that this sound matches (calibrated)" };
  }
  if (hit.score <= 0) return { text: "no similarity", value: 0, title: "cosine similarity at or below 0" };
  return { text: hit.score.toFixed(3), value: Math.min(1, hit.score), title: "cosine similarity" };
}

function fileName(id) {
  const parts = String(id).split("/");
  return parts[parts.length - 1] || String(id);
}

function hitCard(hit, rank, closest) {
  const li = el("li", "hit" + (closest ? " closest" : ""));
  li.dataset.id = hit.id;

  const head = el("div", "hit-head");
  head.append(el("span", "rank", "#" + rank), el("span", "hit-title", hit.id));
  const shown = scoreText(hit);
  const score = el("span", "score", shown.text);
  score.title = shown.title;
  head.append(score);
  li.append(head);

  const bar = el("div", "bar");
  bar.setAttribute("aria-hidden", "true");
  const fill = el("span");
  fill.style.width = Math.max(0, Math.min(1, shown.value)) * 100 + "%";
  bar.append(fill);
  li.append(bar);

  if (hit.waveform_url) {
    const img = el("img", "thumb");
    img.src = hit.waveform_url;
    img.alt = "";
    img.loading = "lazy";
    img.width = 240;
    img.height = 48;
    img.addEventListener("error", () => img.remove());
    li.append(img);
  }
  if (hit.caption) {
    const cap = el("p", "reference");
    cap.append(el("span", "label", "Reference caption: "), document.createTextNode(hit.caption));
    cap.title = "the caption this sound came with in its dataset (not a model's output)";
    li.append(cap);
  }
  const facts = [];
  if (hit.duration !== null && hit.duration !== undefined) facts.push(clock(hit.duration));
  if (hit.license) facts.push("License: " + hit.license);
  if (hit.attribution) facts.push("Source: " + hit.attribution);
  if (facts.length) li.append(el("p", "meta facts", facts.join(" · ")));
  if (hit.tags && hit.tags.length) {
    const tags = el("div", "chips small");
    hit.tags.forEach((t) => tags.append(chip(t, () => searchFor(t))));
    li.append(tags);
  }
  if (hit.audio_url) {
    const audio = el("audio");
    audio.controls = true;
    audio.preload = "metadata";  // shows the length, not 0:00
    audio.src = hit.audio_url;
    audio.setAttribute("aria-label", "Play " + (hit.caption || hit.id));
    li.append(audio);
  }
  const actions = el("div", "actions");
  if (hit.audio_url) {
    const dl = el("a", "download", "Download");
    dl.href = hit.audio_url;
    dl.setAttribute("download", fileName(hit.id));
    actions.append(dl);
    const more = el("button", "more-like", "More like this");
    more.type = "button";
    more.addEventListener("click", () => go({ kind: "like", id: hit.id, k: pageSize(), page: 1,
      filters: currentFilters() }));
    actions.append(more);
  }
  if (actions.childElementCount) li.append(actions);
  return li;
}

function chip(text, onClick) {
  const b = el("button", "chip", text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function clearResults() {
  $("results").replaceChildren();
  $("no-match").hidden = true;
  $("pager").hidden = true;
}

function showResults(body, state) {
  const list = $("results");
  list.replaceChildren();
  const offset = (state.page - 1) * state.k;
  $("no-match").hidden = !body.no_close_match;
  body.results.forEach((hit, i) => list.append(hitCard(hit, offset + i + 1, body.no_close_match)));
  const pager = $("pager");
  const more = body.results.length === state.k && offset + 2 * state.k <= (info.max_k || 100);
  pager.hidden = state.kind === "upload" || (state.page === 1 && !more);
  $("prev-page").disabled = state.page <= 1;
  $("next-page").disabled = !more;
  $("page-info").textContent = body.results.length
    ? "Results " + (offset + 1) + "–" + (offset + body.results.length) : "No more results";
}

function pageSize() { return parseInt($("search-k").value, 10) || 10; }

// ------------------------------------------------------------------ filters and sorting

// URL parameter = control: min/max length (s), tag, license, sort ("relevance" is left out).
const FILTERS = ["min", "max", "tag", "license", "sort"];
const FILTER_CONTROLS = { min: "f-min", max: "f-max", tag: "f-tag", license: "f-license", sort: "f-sort" };

// Filters from a getter (URL parameters or the controls): only set, valid values.
function filtersFrom(get) {
  const f = {};
  ["min", "max"].forEach((name) => {
    const v = parseFloat(get(name));
    if (isFinite(v) && v >= 0) f[name] = v;
  });
  ["tag", "license"].forEach((name) => { const v = (get(name) || "").trim(); if (v) f[name] = v; });
  if (["duration", "name"].includes(get("sort"))) f.sort = get("sort");
  return f;
}

function currentFilters() { return filtersFrom((name) => $(FILTER_CONTROLS[name]).value); }

function showFilters(f) {
  FILTERS.forEach((name) => {
    const control = $(FILTER_CONTROLS[name]);
    const value = f[name] === undefined ? (name === "sort" ? "relevance" : "") : String(f[name]);
    if (control.tagName === "SELECT" && value && ![...control.options].some((o) => o.value === value)) {
      control.append(new Option(value, value));  // e.g. a bookmarked tag the library list does not show
    }
    control.value = value;
  });
  $("f-clear").hidden = !Object.keys(f).length;
}

function filterPayload(f) {
  const body = {};
  if (f.min !== undefined) body.min_duration = f.min;
  if (f.max !== undefined) body.max_duration = f.max;
  if (f.tag) body.tag = f.tag;
  if (f.license) body.license = f.license;
  if (f.sort) body.sort = f.sort;
  return body;
}

function describeFilters(f) {
  const parts = [];
  if (f.min !== undefined && f.max !== undefined) parts.push(f.min + "–" + f.max + " s");
  else if (f.min !== undefined) parts.push("at least " + f.min + " s");
  else if (f.max !== undefined) parts.push("at most " + f.max + " s");
  if (f.tag) parts.push("tag “" + f.tag + "”");
  if (f.license) parts.push(f.license);
  if (f.sort === "duration") parts.push("shortest first");
  if (f.sort === "name") parts.push("by name");
  return parts.join(", ");
}

// A changed filter re-runs the text or more-like-this search from its first page, or the upload's
// search for similar sounds.
function refilter() {
  $("f-clear").hidden = !Object.keys(currentFilters()).length;
  if (current && current.kind !== "upload") go(Object.assign({}, current, { filters: currentFilters(), page: 1 }));
  else if (current && lastFile) findSimilar(lastFile);  // the upload's similar sounds, filtered
}

function setupFilters() {
  ["f-tag", "f-license", "f-sort", "f-min", "f-max"].forEach((id) => $(id).addEventListener("change", refilter));
  $("f-clear").addEventListener("click", () => { showFilters({}); refilter(); });
}

// ------------------------------------------------------------------ state in the URL

function stateFromUrl() {
  const p = new URLSearchParams(location.search);
  const k = [5, 10, 20].includes(parseInt(p.get("k"), 10)) ? parseInt(p.get("k"), 10) : 10;
  const page = Math.max(1, parseInt(p.get("page"), 10) || 1);
  const filters = filtersFrom((name) => p.get(name));
  if (p.get("q")) return { kind: "text", text: p.get("q"), k: k, page: page, filters: filters };
  if (p.get("like")) return { kind: "like", id: p.get("like"), k: k, page: page, filters: filters };
  return null;
}

function urlFor(state) {
  const p = new URLSearchParams();
  if (state.kind === "text") p.set("q", state.text);
  if (state.kind === "like") p.set("like", state.id);
  if (state.k !== 10) p.set("k", String(state.k));
  if (state.page > 1) p.set("page", String(state.page));
  const f = state.filters || {};
  FILTERS.forEach((name) => { if (f[name] !== undefined && f[name] !== "") p.set(name, String(f[name])); });
  const qs = p.toString();
  return location.pathname + (qs ? "?" + qs : "");
}

// Run a text / more-like-this search and record it in the history (bookmark, share, back).
function go(state, { push = true } = {}) {
  if (push) {
    const url = urlFor(state);
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
  }
  return run(state);
}

async function run(state) {
  current = state;
  const ticket = ++resultsRun;
  const status = $("results-status");
  const heading = $("results-heading");
  $("search-k").value = String(state.k);
  const filters = state.filters || {};
  showFilters(filters);
  let url, payload;
  const offset = (state.page - 1) * state.k;
  if (state.kind === "text") {
    $("search-text").value = state.text;
    heading.textContent = "Sounds matching “" + state.text + "”";
    url = "/v1/search";
    payload = Object.assign({ text: state.text, k: state.k, offset: offset }, filterPayload(filters));
  } else {
    heading.textContent = "More like “" + state.id + "”";
    url = "/v1/search/similar";
    payload = Object.assign({ id: state.id, k: state.k, offset: offset }, filterPayload(filters));
  }
  setStatus(status, "Searching…", "busy");
  $("search-button").disabled = true;
  try {
    const body = await api(url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload) });
    if (ticket !== resultsRun) return;
    showResults(body, state);
    const n = body.results.length;
    const what = body.no_close_match ? (n === 1 ? "the closest sound" : "the " + n + " closest sounds")
      : (n === 1 ? "1 result" : n + " results");
    const filtered = describeFilters(filters);
    const empty = filtered && state.page === 1 ? "No sounds among the best matches pass these filters (" +
      filtered + "); clear or widen them." : "No results on this page.";
    setStatus(status, n ? what + (state.page > 1 ? " on page " + state.page : "") +
      (filtered ? " (" + filtered + ")" : "") : empty, body.no_close_match ? "" : "ok");
  } catch (err) {
    if (ticket !== resultsRun) return;
    clearResults();
    setStatus(status, explain(err, "searching"), "error");
  } finally {
    if (ticket === resultsRun) $("search-button").disabled = false;
  }
}

function searchFor(text) {
  $("search-text").value = text;
  go({ kind: "text", text: text, k: pageSize(), page: 1, filters: currentFilters() });
  $("results-panel").scrollIntoView({ block: "start" });
}

function submitSearch(event) {
  event.preventDefault();
  const text = $("search-text").value.trim();
  if (!text) {
    setStatus($("results-status"), "Type a description of the sound first.", "error");
    $("search-text").focus();
    return;
  }
  go({ kind: "text", text: text, k: pageSize(), page: 1, filters: currentFilters() });
}

function turnPage(delta) {
  if (!current || current.kind === "upload") return;
  go(Object.assign({}, current, { page: Math.max(1, current.page + delta) }));
}

// ------------------------------------------------------------------ uploads

// Duration of a local file read by the browser (null when it cannot tell, e.g. AIFF).
function localDuration(url) {
  return new Promise((resolve) => {
    const probe = new Audio();
    const done = (v) => { clearTimeout(timer); probe.removeAttribute("src"); resolve(v); };
    const timer = setTimeout(() => done(null), 4000);
    probe.preload = "metadata";
    probe.addEventListener("loadedmetadata", () => done(isFinite(probe.duration) ? probe.duration : null));
    probe.addEventListener("error", () => done(null));
    probe.src = url;
  });
}

function tooBig(file) {
  if (info.max_upload_bytes && file.size > info.max_upload_bytes) {
    return "“" + file.name + "” is " + (file.size / 1e6).toFixed(1) + " MB; this server accepts " +
      "files up to " + (info.max_upload_bytes / 1e6).toFixed(0) + " MB. Save a shorter part, or " +
      "export it compressed (FLAC, Ogg or MP3), then drop it again.";
  }
  return null;
}

function tooLong(file, seconds) {
  if (info.max_duration && seconds !== null && seconds > info.max_duration + 0.05) {
    return "“" + file.name + "” is " + clock(seconds) + " long; this server accepts recordings up " +
      "to " + clock(info.max_duration) + ". Trim it in an audio editor (for example Audacity) or " +
      "choose a shorter part, then drop it again.";
  }
  return null;
}

function resetCaption() {
  $("captions").replaceChildren();
  $("windows").replaceChildren();
  $("windows").hidden = true;
  $("captions").hidden = false;
  $("caption-flag").hidden = true;
  $("caption-block").hidden = true;
}

async function handleFile(file) {
  if (!file) return;
  const ticket = ++captionRun;
  const status = $("caption-status");
  const out = $("caption-output");
  const player = $("caption-audio");
  lastFile = null;
  resetCaption();
  out.hidden = true;
  player.hidden = true;
  const big = tooBig(file);
  if (big) { setStatus(status, big, "error"); return; }
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  const seconds = await localDuration(previewUrl);
  if (ticket !== captionRun) return;
  const long = tooLong(file, seconds);
  if (long) { setStatus(status, long, "error"); return; }

  lastFile = file;
  setClassifyFile(file, "from the upload panel");
  $("caption-file").textContent = file.name + (seconds ? " (" + clock(seconds) + ")" : "");
  player.src = previewUrl;
  playable = seconds !== null;  // the browser can play it: else no dead player on screen
  setStatus(status, info.captioner ? "Listening to " + file.name + "…" : "", info.captioner ? "busy" : "");

  const similar = findSimilar(file);
  if (info.captioner) await captionFile(file, ticket);
  await similar;
}

function form(file) {
  const f = new FormData();
  f.append("file", file, file.name);
  return f;
}

async function captionFile(file, ticket) {
  const status = $("caption-status");
  resetCaption();
  setStatus(status, "Describing " + file.name + "…", "busy");
  try {
    const body = await api("/v1/caption?beam=" + $("beam").value, { method: "POST", body: form(file) });
    if (ticket !== captionRun) return;
    if (body.windows && body.windows.length) showWindows(body.windows);
    else body.captions.forEach((text) => $("captions").append(el("li", "", text)));
    $("caption-title").textContent = body.windows && body.windows.length
      ? "Captions per " + clock(body.windows[0].end - body.windows[0].start) + " window" : "Caption";
    showFlag(body);
    $("caption-block").hidden = false;
    showUpload();
    setStatus(status, "Described " + file.name + " (beam " + body.beam + ").", "ok");
  } catch (err) {
    if (ticket !== captionRun) return;
    setStatus(status, explain(err, "describing the recording"), "error");
  }
}

// Silence or a steady tone/noise: say so instead of presenting a confident caption (issue 20).
function showFlag(body) {
  const note = $("caption-flag");
  note.hidden = !body.flag;
  if (body.flag === "silence") note.textContent = "Silence: there is no sound to describe.";
  else if (body.flag === "low_confidence") {
    note.textContent = "Low confidence (" + Math.round(100 * body.confidence) + " %): this does not " +
      "sound like a recognisable sound event (" + body.reason + "), so the caption is only a guess.";
  }
}

function showWindows(windows) {
  const list = $("windows");
  const player = $("caption-audio");
  $("captions").hidden = true;
  list.hidden = false;
  windows.forEach((w) => {
    const li = el("li");
    const b = el("button", "window");
    b.type = "button";
    b.append(el("span", "when", clock(w.start) + "–" + clock(w.end)), el("span", "text", w.caption));
    if (w.flag === "low_confidence") b.append(el("span", "when", "low confidence"));
    b.addEventListener("click", () => {
      player.currentTime = w.start;
      player.dataset.stopAt = String(w.end);
      player.play().catch(() => {});
    });
    li.dataset.start = w.start;
    li.dataset.end = w.end;
    li.append(b);
    list.append(li);
  });
}

function followPlayback() {
  const player = $("caption-audio");
  const t = player.currentTime;
  if (player.dataset.stopAt && t >= parseFloat(player.dataset.stopAt)) {
    player.pause();
    delete player.dataset.stopAt;
  }
  $("windows").querySelectorAll("li").forEach((li) => {
    li.classList.toggle("playing", t >= parseFloat(li.dataset.start) && t < parseFloat(li.dataset.end));
  });
}

async function findSimilar(file) {
  const ticket = ++resultsRun;
  current = { kind: "upload", name: file.name, k: pageSize(), page: 1, filters: currentFilters() };
  if (location.search) history.pushState(null, "", location.pathname);
  const status = $("results-status");
  $("results-heading").textContent = "Sounds like “" + file.name + "”";
  clearResults();
  setStatus(status, "Looking for sounds like " + file.name + "…", "busy");
  try {
    const query = new URLSearchParams(Object.assign({ k: pageSize() }, filterPayload(current.filters)));
    const body = await api("/v1/search/audio?" + query, { method: "POST", body: form(file) });
    if (ticket !== resultsRun) return;
    showResults(body, current);
    const filtered = describeFilters(current.filters);
    setStatus(status, body.results.length + " sounds like " + file.name + (filtered ? " (" + filtered + ")" : ""), "ok");
    showUpload();
    if (!info.captioner) setStatus($("caption-status"), "Similar sounds are listed under Results.", "ok");
  } catch (err) {
    if (ticket !== resultsRun) return;
    if (info.captioner && FILE_ERRORS.includes(err.code)) {
      // the caption panel explains what is wrong with the file; say it once
      setStatus(status, "No similar sounds: the server could not use “" + file.name + "” (see the " +
        "message in the upload panel).", "error");
    } else {
      setStatus(status, explain(err, "looking for similar sounds"), "error");
    }
    if (!info.captioner) setStatus($("caption-status"), explain(err, "reading the recording"), "error");
  }
}

function setupDrops() {
  const zone = $("drop-zone");
  const input = $("file-input");
  input.addEventListener("change", () => { handleFile(input.files[0]); });
  // A file dropped anywhere on the page is the upload (on the zero-shot panel: the sound to
  // classify); the browser never navigates to it.
  const classifyZone = $("classify-drop");
  const overClassify = (e) => e.target instanceof Element && e.target.closest("#classify-panel") !== null;
  ["dragenter", "dragover"].forEach((name) => document.addEventListener(name, (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    zone.classList.toggle("over", !overClassify(e));
    classifyZone.classList.toggle("over", overClassify(e));
  }));
  ["dragleave", "dragend"].forEach((name) => document.addEventListener(name, (e) => {
    if (!e.relatedTarget) { zone.classList.remove("over"); classifyZone.classList.remove("over"); }
  }));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    classifyZone.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (!file) return;
    if (overClassify(e)) {
      setClassifyFile(file);
      classifySound();
    } else {
      handleFile(file);
    }
  });
  $("beam").addEventListener("change", () => {
    if (lastFile && info.captioner) captionFile(lastFile, captionRun);
  });
  $("caption-audio").addEventListener("timeupdate", followPlayback);
}

// ------------------------------------------------------------------ zero-shot: what is this sound?

let classifyFile = null;
let classifyRun = 0;
let libraryTags = [];      // the library's own tags: the server's candidates when none are typed
const SHOWN_LABELS = 12;   // bars drawn; the rest are summed in one line

function typedLabels() {
  const seen = new Set();
  return $("classify-labels").value.split(/[,\n]/).map((s) => s.trim().replace(/\s+/g, " "))
    .filter((s) => s && !seen.has(s.toLowerCase()) && seen.add(s.toLowerCase()));
}

function markTagChips() {
  const chosen = new Set(typedLabels().map((l) => l.toLowerCase()));
  $("classify-tag-list").querySelectorAll(".chip").forEach((b) =>
    b.setAttribute("aria-pressed", String(chosen.has(b.dataset.tag.toLowerCase()))));
}

// A library tag chip adds its tag to the candidates, or takes it out again.
function toggleLabel(tag) {
  const labels = typedLabels();
  const i = labels.findIndex((l) => l.toLowerCase() === tag.toLowerCase());
  if (i >= 0) labels.splice(i, 1);
  else labels.push(tag);
  $("classify-labels").value = labels.join(", ");
  markTagChips();
}

function setClassifyFile(file, from) {
  classifyFile = file;
  $("classify-sound").textContent = "Sound: " + file.name + (from ? " (" + from + ")" : "");
}

async function classifySound() {
  const status = $("classify-status");
  const list = $("classify-results");
  const file = classifyFile;
  const labels = typedLabels();
  const ticket = ++classifyRun;  // an answer still on its way is now stale
  $("classify-button").disabled = false;
  list.hidden = true;
  list.replaceChildren();
  if (!file) {
    setStatus(status, "Choose or drop a sound to classify first.", "error");
    $("classify-file").focus();
    return;
  }
  if (labels.length === 1 || (!labels.length && libraryTags.length < 2)) {
    setStatus(status, "Type at least two labels to choose between, separated by commas " +
      "(for example: dog barking, rain).", "error");
    $("classify-labels").focus();
    return;
  }
  const big = tooBig(file);
  if (big) { setStatus(status, big, "error"); return; }
  const url = URL.createObjectURL(file);
  const seconds = await localDuration(url);
  URL.revokeObjectURL(url);
  if (ticket !== classifyRun) return;
  const long = tooLong(file, seconds);
  if (long) { setStatus(status, long, "error"); return; }
  setStatus(status, "Listening to " + file.name + "…", "busy");
  $("classify-button").disabled = true;
  const body = form(file);
  if (labels.length) body.append("labels", labels.join("\n"));
  try {
    const answer = await api("/v1/classify", { method: "POST", body: body });
    if (ticket !== classifyRun) return;
    showLabelBars(answer.labels);
    const among = answer.labels_from === "library tags"
      ? " among this library's " + answer.labels.length + " tags" : "";
    setStatus(status, "“" + file.name + "” sounds most like “" + answer.labels[0].label + "”" + among + ".", "ok");
  } catch (err) {
    if (ticket !== classifyRun) return;
    setStatus(status, explain(err, "classifying the sound"), "error");
  } finally {
    if (ticket === classifyRun) $("classify-button").disabled = false;
  }
}

function percent(p) { return (100 * p).toFixed(1) + "%"; }

function showLabelBars(labels) {
  const list = $("classify-results");
  list.replaceChildren();
  labels.slice(0, SHOWN_LABELS).forEach((r) => {
    const li = el("li");
    li.dataset.label = r.label;
    li.title = "cosine similarity " + r.cosine.toFixed(3);
    const row = el("div", "label-row");
    row.append(el("span", "label-name", r.label), el("span", "prob", percent(r.probability)));
    const bar = el("div", "bar");
    bar.setAttribute("aria-hidden", "true");
    const fill = el("span");
    fill.style.width = Math.max(0, Math.min(1, r.probability)) * 100 + "%";
    bar.append(fill);
    li.append(row, bar);
    list.append(li);
  });
  if (labels.length > SHOWN_LABELS) {
    const rest = labels.slice(SHOWN_LABELS).reduce((sum, r) => sum + r.probability, 0);
    list.append(el("li", "more", (labels.length - SHOWN_LABELS) + " more labels: " + percent(rest) + " together"));
  }
  list.hidden = false;
}

function setupClassify() {
  $("classify-form").addEventListener("submit", (event) => { event.preventDefault(); classifySound(); });
  $("classify-labels").addEventListener("input", markTagChips);
  $("classify-file").addEventListener("change", () => {
    const file = $("classify-file").files[0];
    if (file) { setClassifyFile(file); classifySound(); }
  });
}

// ------------------------------------------------------------------ microphone recording

// Recorded with MediaRecorder (WebM/Opus in Chromium), decoded by the browser and sent as a
// 16-bit mono WAV at the model's rate: the server reads WAV, FLAC, Ogg, MP3 and AIFF, not WebM.
let recorder = null;  // the recording in progress: {media, stream, button, label, timer}

function canRecord() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
}

function wavFile(buffer, name) {
  const n = buffer.length;
  const mono = new Float32Array(n);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const ascii = (pos, text) => { for (let i = 0; i < text.length; i++) view.setUint8(pos + i, text.charCodeAt(i)); };
  ascii(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); ascii(8, "WAVE");
  ascii(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, buffer.sampleRate, true); view.setUint32(28, 2 * buffer.sampleRate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  ascii(36, "data"); view.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) view.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, mono[i])) * 32767), true);
  return new File([view.buffer], name, { type: "audio/wav" });
}

async function toWav(blob, name) {
  const ctx = new AudioContext({ sampleRate: info.sample_rate || 48000 });
  try {
    return wavFile(await ctx.decodeAudioData(await blob.arrayBuffer()), name);
  } finally {
    ctx.close();
  }
}

// The Record button toggles: start, then Stop (or the server's length limit) ends the take and
// hands it to ``onDone`` as a WAV file, as if it had been dropped on that panel.
async function toggleRecording(button, status, onDone) {
  if (recorder) { stopRecording(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    setStatus(status, err.name === "NotAllowedError"
      ? "The browser did not allow the microphone. Allow it for this page (the icon in the address " +
        "bar) and press Record again."
      : "No microphone could be opened (" + err.message + ").", "error");
    return;
  }
  const media = new MediaRecorder(stream);
  const chunks = [];
  const limit = Math.max(1, (info.max_duration || 30) - 0.5);  // stay under the server's limit
  const started = Date.now();
  media.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
  media.addEventListener("stop", async () => {
    stream.getTracks().forEach((t) => t.stop());
    const stamp = new Date().toTimeString().slice(0, 8).replace(/:/g, "");
    try {
      onDone(await toWav(new Blob(chunks, { type: media.mimeType }), "recording-" + stamp + ".wav"));
    } catch (err) {
      setStatus(status, "The recording could not be read back (" + err.message + "); record it again.", "error");
    }
  });
  const tick = () => {
    const seconds = (Date.now() - started) / 1000;
    button.textContent = "■ Stop " + clock(seconds);
    if (seconds >= limit) stopRecording();
  };
  recorder = { media: media, stream: stream, button: button, label: button.textContent, timer: setInterval(tick, 200) };
  button.classList.add("recording");
  button.setAttribute("aria-pressed", "true");
  setStatus(status, "Recording… press Stop when done (at most " + clock(limit) + ").", "busy");
  media.start();
  tick();
}

function stopRecording() {
  if (!recorder) return;
  const r = recorder;
  recorder = null;
  clearInterval(r.timer);
  r.button.textContent = r.label;
  r.button.classList.remove("recording");
  r.button.setAttribute("aria-pressed", "false");
  if (r.media.state !== "inactive") r.media.stop();
}

function setupRecording() {
  const buttons = [$("record-caption"), $("record-classify")];
  if (!canRecord()) {  // e.g. a page opened over plain http from another machine
    buttons.forEach((b) => { b.parentElement.hidden = true; });
    return;
  }
  $("record-caption").addEventListener("click", () =>
    toggleRecording($("record-caption"), $("caption-status"), handleFile));
  $("record-classify").addEventListener("click", () =>
    toggleRecording($("record-classify"), $("classify-status"), (file) => {
      setClassifyFile(file, "recorded");
      classifySound();
    }));
}

// ------------------------------------------------------------------ what the library holds

async function loadInfo() {
  try {
    info = Object.assign(info, await api("/v1/info"));
    const parts = [info.items + " sounds in this library"];
    parts.push(info.captioner ? "captioner loaded" : "no captioner loaded");
    $("server-info").textContent = parts.join(" · ");
    const lim = ["WAV, FLAC, Ogg, MP3 or AIFF"];
    if (info.max_upload_bytes) lim.push("up to " + (info.max_upload_bytes / 1e6).toFixed(0) + " MB");
    if (info.max_duration) lim.push("up to " + clock(info.max_duration) + " long");
    let text = lim.join(", ") + ".";
    if (info.captioner && info.per_window_above &&
        (!info.max_duration || info.max_duration > info.per_window_above)) {
      text += " Recordings over " + clock(info.per_window_above) + " get one caption per window.";
    }
    $("limits").textContent = text;
    if (!info.captioner) {
      $("caption-heading").textContent = "Find sounds like a recording";
      const note = $("captioner-note");
      note.textContent = "This server has no captioner loaded, so it cannot describe recordings " +
        "in words. You can still drop a recording to find similar sounds in the library.";
      note.hidden = false;
      $("beam-row").hidden = true;
      $("drop-hint").replaceChildren(el("strong", "", "Drop a recording here"),
        document.createTextNode(" to find similar sounds, or choose one:"));
      $("file-input").previousElementSibling.textContent = "Audio file to find similar sounds for";
    }
  } catch (err) {
    $("server-info").textContent = explain(err, "loading the server's details");
  }
}

// The tag and license lists come from the library itself; a filter with nothing to offer is hidden.
function fillFilterOptions(lib) {
  const tags = lib.tag_names || [];
  const licenses = (lib.licenses || []).map((l) => l.license);
  [["f-tag", tags], ["f-license", licenses]].forEach(([id, values]) => {
    const select = $(id);
    const chosen = select.value;
    values.forEach((v) => { if (![...select.options].some((o) => o.value === v)) select.append(new Option(v, v)); });
    select.value = chosen;
    select.parentElement.hidden = !values.length && !chosen;
  });
  if (lib.duration_range) {
    $("f-min").placeholder = String(Math.floor(lib.duration_range[0]));
    $("f-max").placeholder = String(Math.ceil(lib.duration_range[1]));
  }
}

async function loadLibrary() {
  let lib;
  try { lib = await api("/v1/library"); } catch (_) { return; }
  if (lib.examples && lib.examples.length) {
    $("search-text").placeholder = "e.g. " + lib.examples[0];
    const list = $("example-list");
    lib.examples.forEach((text) => list.append(chip(text, () => searchFor(text))));
    $("examples").hidden = false;
  }
  fillFilterOptions(lib);
  if (lib.tags && lib.tags.length) {
    $("tags-summary").textContent = (lib.tags_kind === "tags" ? "Tags in this library"
      : "Common words in this library's captions") + " (" + lib.tags.length + ")";
    const list = $("tag-list");
    lib.tags.forEach((t) => {
      const b = chip(t.tag, () => searchFor(t.tag));
      b.append(el("span", "count", " " + t.count));
      list.append(b);
    });
    $("tags").hidden = false;
    if (lib.tags_kind === "tags") libraryTags = lib.tags.map((t) => t.tag);
    const chips = $("classify-tag-list");
    lib.tags.forEach((t) => {
      const b = chip(t.tag, () => toggleLabel(t.tag));
      b.dataset.tag = t.tag;
      b.setAttribute("aria-pressed", "false");
      chips.append(b);
    });
    $("classify-labels").placeholder = "e.g. " + lib.tags.slice(0, 3).map((t) => t.tag).join(", ");
    $("classify-tags").hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("search-form").addEventListener("submit", submitSearch);
  $("prev-page").addEventListener("click", () => turnPage(-1));
  $("next-page").addEventListener("click", () => turnPage(1));
  $("search-k").addEventListener("change", () => {
    if (current && current.kind !== "upload") go(Object.assign({}, current, { k: pageSize(), page: 1 }));
  });
  window.addEventListener("popstate", () => {
    const state = stateFromUrl();
    if (state) run(state);
    else if (current && current.kind !== "upload") {
      current = null;
      clearResults();
      showFilters({});
      $("results-heading").textContent = "Results";
      setStatus($("results-status"), "");
    }
  });
  setupDrops();
  setupClassify();
  setupFilters();
  setupRecording();
  await loadInfo();
  await loadLibrary();  // the filter lists first, so a bookmarked filter shows in its control
  const state = stateFromUrl();
  if (state) run(state);
});
