// The page of `facenet-offline serve`: every action is a call to the service's own /v1 API.
"use strict";

const KEY = "facenet-offline-key"; // sessionStorage: this tab only
const state = { scope: null, people: [], thumbs: new Map() };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    Object.assign(this, { status, code, retryAfter });
  }
}

async function api(path, { method = "GET", body = null, json = null, blob = false } = {}) {
  const headers = {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers["X-API-Key"] = key;
  if (json !== null) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, "unreachable", "The service cannot be reached; is `facenet-offline serve` running?");
  }
  if (response.ok) return blob ? response.blob() : response.json();
  let error = { code: "http_error", message: `${method} ${path}: HTTP ${response.status}` };
  try {
    error = (await response.json()).error || error;
  } catch (err) { /* not JSON: keep the status line */ }
  throw new ApiError(response.status, error.code, error.message, response.headers.get("Retry-After"));
}

// --- messages --------------------------------------------------------------------------------------
function say(text, kind = "error") {
  const box = $("messages");
  const line = el("p", { class: kind }, text);
  const close = el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss this message" }, "×");
  close.addEventListener("click", () => line.remove());
  line.append(" ", close);
  box.prepend(line);
  while (box.children.length > 4) box.lastChild.remove();
}

// The server's messages name the input already; prefix the file name only when they do not.
function named(what, message) {
  return message.includes(what) ? message : `${what}: ${message}`;
}

function explain(err, what) {
  if (err.status === 503) {
    return `The server is busy (503): ${what} was not done. Try again in ${err.retryAfter || "a few"} s.`;
  }
  if (err.status === 413) return `${what}: too big for this server (413). ${err.message}`;
  if (err.status === 401) return `${what}: ${err.message} Enter a key with the API key button.`;
  if (err.status === 403) return `${what}: this key may read only (${err.message})`;
  return named(what, err.message);
}

// --- access ----------------------------------------------------------------------------------------
async function start() {
  try {
    const me = await api("/v1/me");
    state.scope = me.scope;
    $("key-panel").hidden = true;
    $("app").hidden = false;
    $("change-key").hidden = !me.keys;
    $("model").textContent = `${me.model.model} (${me.model.precision})` +
      (me.keys ? `, key: ${me.key} (${me.scope})` : "");
    for (const node of document.querySelectorAll(".admin-only")) node.hidden = me.scope !== "admin";
    await loadGallery();
  } catch (err) {
    if (err.status === 401) {
      sessionStorage.removeItem(KEY);
      $("app").hidden = true;
      $("key-panel").hidden = false;
      if (err.code === "bad_key") say("That key is not one of this service's.");
      $("key-input").focus();
    } else {
      say(explain(err, "Starting"));
    }
  }
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key-input").value.trim());
  $("key-input").value = "";
  start();
});
$("change-key").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  $("app").hidden = true;
  $("key-panel").hidden = false;
  $("key-input").focus();
});

// --- photos ----------------------------------------------------------------------------------------
function addPhotos(files) {
  for (const file of files) {
    const figure = el("figure", { class: "photo", "aria-busy": "true" }, el("figcaption", {}, `${file.name}: looking…`));
    $("results").prepend(figure);
    identifyInto(figure, file);
  }
}

async function identifyInto(figure, file) {
  figure.setAttribute("aria-busy", "true");
  const form = new FormData();
  form.append("images", file, file.name);
  form.append("top_k", "5");
  try {
    const answer = await api("/v1/identify", { method: "POST", body: form });
    drawPhoto(figure, file, answer.images[0], answer.operating_point);
  } catch (err) {
    figure.replaceChildren(el("figcaption", { class: "error" }, explain(err, file.name)));
    say(explain(err, file.name));
  } finally {
    figure.removeAttribute("aria-busy");
  }
}

function drawPhoto(figure, file, image, point) {
  if (figure.dataset.url) URL.revokeObjectURL(figure.dataset.url);
  figure.replaceChildren();
  if (image.status === "error") {
    const text = named(file.name, image.error.message);
    figure.append(el("figcaption", { class: "error" }, text));
    say(text);
    return;
  }
  const url = URL.createObjectURL(file);
  figure.dataset.url = url;
  const frame = el("div", { class: "frame" }, el("img", { src: url, alt: `photo ${file.name}` }));
  const { width, height } = image.size;
  image.faces.forEach((face, k) => {
    const [x1, y1, x2, y2] = face.box;
    const known = face.identity !== "unknown";
    const distance = face.distance === null ? "" : face.distance.toFixed(2);
    const box = el("button", {
      type: "button", class: `face ${known ? "known" : "unknown"}`,
      "aria-label": `face ${k + 1}: ${face.identity}${distance ? `, distance ${distance}` : ""}; show matches`,
    }, el("span", { class: "label" }, face.identity, el("span", { class: "distance" }, distance)));
    Object.assign(box.style, {
      left: `${(100 * x1) / width}%`, top: `${(100 * y1) / height}%`,
      width: `${(100 * (x2 - x1)) / width}%`, height: `${(100 * (y2 - y1)) / height}%`,
    });
    box.addEventListener("click", () => showFace(figure, file, image, face, k, point));
    frame.append(box);
  });
  const names = image.faces.map((f) => f.identity);
  const caption = image.status === "ok"
    ? `${file.name}: ${names.length} face${names.length === 1 ? "" : "s"} (${names.join(", ")})`
    : `${file.name}: ${image.status === "too small" ? "too small to hold a face" : "no face found"}`;
  figure.append(frame, el("figcaption", { class: image.status === "ok" ? "" : "error" }, caption));
  if (image.status !== "ok") say(caption);
}

const drop = $("drop");
$("file-input").addEventListener("change", (event) => {
  addPhotos(event.target.files);
  event.target.value = "";
});
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  addPhotos(event.dataTransfer.files);
});

// --- one face: its matches, and enrolling it ------------------------------------------------------
let shown = null; // the face the panel shows: {figure, file, face, index}

function showFace(figure, file, image, face, k, point) {
  shown = { figure, file, face };
  const distance = face.distance === null ? "" : ` at distance ${face.distance.toFixed(3)}`;
  $("face-title").textContent = `Face ${k + 1} of ${file.name}`;
  $("face-summary").textContent = `${face.identity}${distance}`;
  $("face-point").textContent = `Operating point: threshold ${point.threshold.toFixed(3)} (squared L2; ` +
    `${point.far_target ? `false-accept rate ${point.far_target} on ${point.source}` : point.source}); ` +
    "farther than it is unknown.";
  $("face-matches").replaceChildren(...face.matches.map((m) => el("li", {},
    `${m.name}: ${m.distance.toFixed(3)}${m.distance < point.threshold ? " (within the threshold)" : ""}`)));
  if (!face.matches.length) $("face-matches").append(el("li", {}, "The gallery is empty."));
  $("enrol-name").value = face.identity === "unknown" ? "" : face.identity;
  $("face-panel").hidden = false;
  $("face-panel").focus();
}

function closeFace() {
  $("face-panel").hidden = true;
  if (shown) shown.figure.querySelector(".face")?.focus();
  shown = null;
}
$("face-close").addEventListener("click", closeFace);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("face-panel").hidden) closeFace();
});

$("enrol-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!shown) return;
  const { figure, file, face } = shown;
  const name = $("enrol-name").value.trim();
  const form = new FormData();
  form.append("images", file, file.name);
  form.append("face", String(face.index));
  try {
    const answer = await api(`/v1/people/${encodeURIComponent(name)}/faces`, { method: "POST", body: form });
    if (answer.added.length) say(`Enrolled ${file.name} as ${name}.`, "info");
    else if (answer.skipped.length) say(`That face is enrolled already, as ${answer.skipped[0].enrolled_as}.`, "info");
    $("face-panel").hidden = true;
    shown = null;
    await identifyInto(figure, file); // the photo again, recognised now
    await loadGallery();
  } catch (err) {
    say(explain(err, `Enrolling ${file.name} as ${name}`));
  }
});

// --- the gallery -----------------------------------------------------------------------------------
async function thumbnail(name, faceId) {
  if (faceId === null || faceId === undefined) return null;
  const key = `${faceId}`;
  if (!state.thumbs.has(key)) {
    try {
      const blob = await api(`/v1/people/${encodeURIComponent(name)}/faces/${faceId}/thumbnail`, { blob: true });
      state.thumbs.set(key, URL.createObjectURL(blob));
    } catch (err) {
      state.thumbs.set(key, null); // initials instead
      if (err.status !== 404) say(explain(err, `${name}'s thumbnail`)); // 404: enrolled before thumbnails were kept
    }
  }
  return state.thumbs.get(key);
}

function avatar(name, src) {
  if (src) return el("img", { src, alt: "", class: "thumb" });
  const initials = name.split(/[\s_]+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
  return el("span", { class: "thumb initials", "aria-hidden": "true" }, initials);
}

async function loadGallery() {
  const answer = await api("/v1/people");
  state.people = answer.people;
  $("people-names").replaceChildren(...answer.people.map((p) => el("option", { value: p.name })));
  $("gallery-empty").hidden = answer.people.length > 0;
  const items = await Promise.all(answer.people.map(async (p) => {
    const open = el("button", { type: "button", class: "person" },
      avatar(p.name, await thumbnail(p.name, p.thumbnail_face)),
      el("span", { class: "name" }, p.name), el("span", { class: "count" }, `${p.faces} face${p.faces === 1 ? "" : "s"}`));
    open.addEventListener("click", () => openPerson(p.name));
    return el("li", {}, open);
  }));
  $("people").replaceChildren(...items);
  const current = $("person").dataset.name;
  if (current && !answer.people.some((p) => p.name === current)) $("person").hidden = true;
}

async function openPerson(name) {
  try {
    const answer = await api(`/v1/people/${encodeURIComponent(name)}/faces`);
    $("person").dataset.name = name;
    $("person-name").textContent = name;
    $("rename-input").value = name;
    const items = await Promise.all(answer.faces.map(async (f) => {
      const item = el("li", {}, avatar(name, await thumbnail(name, f.id)),
        el("span", { class: "source" }, f.source));
      if (state.scope === "admin") {
        const remove = el("button", { type: "button", class: "danger", "aria-label": `delete face ${f.id} (${f.source})` },
          "Delete face");
        remove.addEventListener("click", () => deleteFace(name, f.id));
        item.append(remove);
      }
      return item;
    }));
    $("person-faces").replaceChildren(...items);
    $("person").hidden = false;
    $("person-name").focus();
  } catch (err) {
    say(explain(err, `Opening ${name}`));
  }
}

async function deleteFace(name, id) {
  try {
    await api(`/v1/people/${encodeURIComponent(name)}/faces/${id}`, { method: "DELETE" });
    say(`Deleted a face of ${name}.`, "info");
    await loadGallery();
    if (state.people.some((p) => p.name === name)) await openPerson(name);
  } catch (err) {
    say(explain(err, `Deleting a face of ${name}`));
  }
}

$("delete-person").addEventListener("click", async () => {
  const name = $("person").dataset.name;
  if (!window.confirm(`Delete ${name} and every face of theirs from the gallery?`)) return;
  try {
    const answer = await api(`/v1/people/${encodeURIComponent(name)}`, { method: "DELETE" });
    say(`Deleted ${name} (${answer.faces_removed} face${answer.faces_removed === 1 ? "" : "s"}).`, "info");
    $("person").hidden = true;
    await loadGallery();
  } catch (err) {
    say(explain(err, `Deleting ${name}`));
  }
});

$("rename-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("person").dataset.name;
  const renamed = $("rename-input").value.trim();
  try {
    await api(`/v1/people/${encodeURIComponent(name)}`, { method: "PATCH", json: { name: renamed } });
    say(`Renamed ${name} to ${renamed}.`, "info");
    await loadGallery();
    await openPerson(renamed);
  } catch (err) {
    say(explain(err, `Renaming ${name}`));
  }
});
$("person-close").addEventListener("click", () => { $("person").hidden = true; });

start();
