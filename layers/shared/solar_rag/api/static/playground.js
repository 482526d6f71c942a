// Solar RAG playground: plain JavaScript, no dependencies. Every call sends the API key the
// user typed (x-api-key); nothing is stored except that key, in this browser's localStorage.
"use strict";

const BASE = location.pathname.replace(/\/playground\/?$/, "").replace(/\/$/, "");
const KEY_STORAGE = "solar-rag-api-key";
const $ = (id) => document.getElementById(id);
// A citation marker as the server writes it (text/markers.py, served in the page's <meta>).
const MARKER = document.querySelector('meta[name="citation-marker"]').content;

const state = { sources: [], answer: "", cited: new Set(), activeIndex: null };

function apiKey() { return localStorage.getItem(KEY_STORAGE) || ""; }

function headers() {
  const result = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  const key = apiKey();
  if (key) result["x-api-key"] = key;
  return result;
}

async function errorText(response) {
  let detail = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail += `: ${body.detail}`;
    else if (Array.isArray(body.detail)) detail += `: ${body.detail.map((d) => d.msg).join("; ")}`;
    else if (body.message) detail += `: ${body.message}`;
  } catch (_) { /* not JSON */ }
  if (response.status === 403 && !apiKey()) detail += " (enter the API key above)";
  return detail;
}

async function call(method, path, body) {
  const response = await fetch(BASE + path, {
    method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await errorText(response));
  return response.status === 204 ? null : response.json();
}

// ---------------------------------------------------------------- documents

function docMessage(text, isError = false) {
  const box = $("doc-message");
  box.textContent = text;
  box.classList.toggle("error", isError);
}

async function refreshDocuments() {
  try {
    const page = await call("GET", "/v1/documents?limit=100");
    const body = $("doc-table").querySelector("tbody");
    body.replaceChildren(...page.documents.map((doc) => {
      const row = document.createElement("tr");
      row.dataset.id = doc.id;
      for (const [value, cls] of [[doc.id, ""], [doc.status, `status-${doc.status}`], [String(doc.chunks), ""]]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        if (cls) cell.className = cls;
        if (doc.error && cls) cell.title = doc.error;
        row.append(cell);
      }
      return row;
    }));
    if (page.documents.some((d) => d.status === "queued" || d.status === "indexing")) {
      setTimeout(refreshDocuments, 3000);
    }
  } catch (error) {
    docMessage(`Could not list documents: ${error.message}`, true);
  }
}

function describe(result) {
  return result.documents.map((d) => `${d.id}: ${d.status} (${d.chunks} chunks)`).join("\n");
}

async function addText(event) {
  event.preventDefault();
  const document_ = {
    id: $("doc-id").value.trim(), text: $("doc-text").value, content_type: $("doc-type").value,
  };
  const title = $("doc-title").value.trim();
  if (title) document_.title = title;
  docMessage("Indexing…");
  try {
    docMessage(describe(await call("POST", "/v1/documents", { documents: [document_] })));
    $("doc-text").value = "";
  } catch (error) {
    docMessage(error.message, true);
  }
  refreshDocuments();
}

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

async function addFiles() {
  const files = Array.from($("doc-files").files);
  const lines = [];
  for (const file of files) {
    docMessage(`Indexing ${file.name}…`);
    try {
      const result = await call("POST", "/v1/files", { filename: file.name, data_base64: await base64Of(file) });
      lines.push(describe(result));
    } catch (error) {
      lines.push(`${file.name}: ${error.message}`);
    }
  }
  docMessage(lines.join("\n"), lines.some((l) => l.includes("HTTP ")));
  $("doc-files").value = "";
  refreshDocuments();
}

// ---------------------------------------------------------------- answers

function parseFilters(text) {
  const filters = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at < 1) throw new Error(`filter "${part}" is not key=value`);
    const key = part.slice(0, at).trim();
    const raw = part.slice(at + 1).trim();
    const value = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw === "true" ? true : raw === "false" ? false : raw;
    if (key in filters) filters[key] = [].concat(filters[key], value);
    else filters[key] = value;
  }
  return filters;
}

function renderAnswer() {
  const box = $("answer");
  const nodes = [];
  const pattern = new RegExp(MARKER, "g");
  let last = 0;
  for (const match of state.answer.matchAll(pattern)) {
    nodes.push(document.createTextNode(state.answer.slice(last, match.index)));
    const index = Number(match[1]);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "cite" + (index === state.activeIndex ? " active" : "");
    button.textContent = `[${index}]`;
    button.dataset.index = String(index);
    nodes.push(button);
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(state.answer.slice(last)));
  box.replaceChildren(...nodes);
}

function renderSources() {
  $("sources-title").hidden = state.sources.length === 0;
  $("sources").replaceChildren(...state.sources.map((source) => {
    const item = document.createElement("li");
    item.value = source.index;
    item.dataset.index = String(source.index);
    // A section path that only repeats the title says nothing more ("Leave policy (Leave policy)").
    const where = source.location && source.location !== source.title ? ` (${source.location})` : "";
    item.textContent = (source.title ? `${source.title} — ${source.document_id}` : source.document_id) + where;
    if (state.cited.has(source.index)) item.className = "cited";
    return item;
  }));
}

function showPassage(index) {
  const source = state.sources.find((s) => s.index === index);
  if (!source) return;
  state.activeIndex = index;
  $("passage-title").textContent = `[${index}] ${source.title || source.document_id}`;
  const origin = source.source && source.source !== source.document_id ? ` · ${source.source}` : "";
  const where = source.location ? ` · ${source.location}` : "";
  $("passage-doc").textContent = `${source.document_id}${origin}${where} · score ${source.score.toFixed(3)}`;
  $("passage-text").textContent = source.text;
  $("passage").hidden = false;
  renderAnswer();
}

function onCitationClick(event) {
  const target = event.target.closest("[data-index]");
  if (target) showPassage(Number(target.dataset.index));
}

function handleEvent(name, data) {
  if (name === "citations") {
    state.sources = data.citations;
    renderSources();
  } else if (name === "delta") {
    state.answer += data.text;
    renderAnswer();
  } else if (name === "done") {
    state.answer = data.answer;
    state.cited = new Set(data.citations.map((c) => c.index));
    for (const cited of data.citations) {
      if (!state.sources.some((s) => s.index === cited.index)) state.sources.push(cited);
    }
    renderAnswer();
    renderSources();
    $("answer-meta").textContent = `${data.model} · ${data.usage.total_tokens} tokens`;
  } else if (name === "error") {
    $("ask-error").textContent = `The answer stopped: ${data.detail} (HTTP ${data.status})`;
  }
}

// Server-Sent Events over fetch (EventSource cannot POST or send headers).
async function readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) handleEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

async function ask(event) {
  event.preventDefault();
  $("ask-error").textContent = "";
  let filters;
  try {
    filters = parseFilters($("filters").value);
  } catch (error) {
    $("ask-error").textContent = error.message;
    return;
  }
  Object.assign(state, { sources: [], answer: "", cited: new Set(), activeIndex: null });
  renderSources();
  renderAnswer();
  $("passage").hidden = true;
  $("answer-meta").textContent = "";
  $("answer-box").hidden = false;
  $("answer").classList.add("streaming");
  $("ask-button").disabled = true;
  try {
    const response = await fetch(`${BASE}/v1/query`, {
      method: "POST", headers: headers(),
      body: JSON.stringify({
        query: $("question").value, mode: $("mode").value, top_k: Number($("top-k").value) || 5,
        filters, stream: true,
      }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response);
  } catch (error) {
    $("ask-error").textContent = error.message;
  } finally {
    $("answer").classList.remove("streaming");
    $("ask-button").disabled = false;
  }
}

// ---------------------------------------------------------------- wiring

function showKeyState() {
  $("key-state").textContent = apiKey() ? "key saved in this browser" : "no key";
}

$("api-key").value = apiKey();
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  showKeyState();
  refreshDocuments();
});
$("text-form").addEventListener("submit", addText);
$("doc-files").addEventListener("change", addFiles);
$("refresh").addEventListener("click", refreshDocuments);
$("ask-form").addEventListener("submit", ask);
$("answer").addEventListener("click", onCitationClick);
$("sources").addEventListener("click", onCitationClick);
$("passage-close").addEventListener("click", () => {
  $("passage").hidden = true;
  state.activeIndex = null;
  renderAnswer();
});
$("base-url").textContent = (location.origin + BASE) || "/";
showKeyState();
refreshDocuments();
