// The page of `facenet-offline serve`: every action is a call to the service's own /v1 API.
"use strict";

const KEY = "facenet-offline-key"; // sessionStorage: this tab only
const state = { scope: null, people: [], thumbs: new Map(), photos: [] }; // photos: {figure, file} on the page
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
  if (kind === "info") box.replaceChildren(); // something worked: earlier complaints are settled
  const line = el("p", { class: kind }, text);
  const close = el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss this message" }, "×");
  close.addEventListener("click", () => line.remove());
  line.append(" ", close);
  box.prepend(line);
  while (box.children.length > 3) box.lastChild.remove();
  if (kind === "info") setTimeout(() => line.remove(), 8000); // news, not a problem: it goes by itself
}

// The API names an input as `images[0] (name.jpg)`; on the page each request carries one file.
function plain(text) {
  return text.replace(/images\[\d+\] \(([^)]*)\)/g, "$1");
}

// Names the gallery refuses, said in the page's words (a "/" could not even reach the service).
function badName(name) {
  if (name.includes("/")) return `"${name}": a name cannot hold a "/"; choose another.`;
  if (name.toLowerCase() === "unknown") {
    return `"${name}" is what the page shows on faces it does not know, so no one can be called that; choose another.`;
  }
  return null;
}

// The server's messages name the input already; prefix the file name only when they do not.
function named(what, message) {
  const text = plain(message);
  return text.includes(what) ? text : `${what}: ${text}`;
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
    $("messages").replaceChildren(); // an earlier key's refusal is no longer news
    $("key-panel").hidden = true;
    $("app").hidden = false;
    $("change-key").hidden = !me.keys;
    $("model").textContent = `${me.model.model} (${me.model.precision})` +
      (me.keys ? `, key: ${me.key} (${me.scope})` : "");
    for (const node of document.querySelectorAll(".admin-only")) node.hidden = me.scope !== "admin";
    $("read-only").hidden = me.scope === "admin";
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
    state.photos.push({ figure, file });
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
    return;
  }
  const url = URL.createObjectURL(file);
  figure.dataset.url = url;
  const frame = el("div", { class: "frame" }, el("img", { src: url, alt: `photo ${file.name}` }));
  const { width, height } = image.size;
  const inside = (v, most) => Math.min(Math.max(v, 0), most); // a face cut by the photo's edge: its visible part
  image.faces.forEach((face, k) => {
    const [x1, y1, x2, y2] = [inside(face.box[0], width), inside(face.box[1], height),
      inside(face.box[2], width), inside(face.box[3], height)];
    const known = face.identity !== "unknown";
    const distance = face.distance === null ? "" : face.distance.toFixed(2);
    const edge = y1 / height < 0.1; // no room above the box for its label
    const box = el("button", {
      type: "button", class: `face ${known ? "known" : "unknown"}${edge ? " edge" : ""}`,
      "aria-label": `face ${k + 1}: ${face.identity}${distance ? `, distance ${distance}` : ""}; show matches`,
    }, el("span", { class: "label" }, face.identity, el("span", { class: "distance" }, distance)));
    Object.assign(box.style, {
      left: `${(100 * x1) / width}%`, top: `${(100 * y1) / height}%`,
      width: `${(100 * (x2 - x1)) / width}%`, height: `${(100 * (y2 - y1)) / height}%`,
    });
    box.addEventListener("click", () => showFace(figure, file, image, face, k, point, box));
    frame.append(box);
  });
  const names = image.faces.map((f) => f.identity);
  const caption = image.status === "ok"
    ? `${file.name}: ${names.length} face${names.length === 1 ? "" : "s"} (${names.join(", ")})`
    : `${file.name}: ${image.status === "too small" ? "too small to hold a face" : "no face found"}`;
  figure.append(frame, el("figcaption", { class: image.status === "ok" ? "" : "error" }, caption));
  frame.querySelector("img").addEventListener("load", () => keepLabelsInside(frame));
  if (image.faces.some((f) => f.distance !== null)) showLegend(point);
}

// A label wider than the room right of its box moves left, so that it stays on the photo.
function keepLabelsInside(frame) {
  for (const box of frame.querySelectorAll(".face")) {
    const label = box.querySelector(".label");
    const over = box.offsetLeft + label.offsetWidth - frame.clientWidth;
    label.style.left = over > 0 ? `${-3 - over}px` : "";
  }
}

function showLegend(point) {
  $("legend").hidden = false;
  $("legend").textContent = `The number on a face is its distance to the nearest person in the gallery: ` +
    `below ${point.threshold.toFixed(3)} the face is named, and the lower, the surer. Click a face for its matches.`;
}

// After a change to the gallery every photo on the page is asked about again, so no name shown is stale.
async function refreshPhotos() {
  await Promise.all(state.photos.filter((p) => p.figure.isConnected).map((p) => identifyInto(p.figure, p.file)));
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

function showFace(figure, file, image, face, k, point, box) {
  for (const other of document.querySelectorAll(".face.selected")) other.classList.remove("selected");
  box.classList.add("selected");
  shown = { figure, file, face, box };
  const threshold = point.threshold.toFixed(3);
  const nearest = face.matches[0];
  $("face-title").textContent = `Face ${k + 1} of ${file.name}`;
  $("face-summary").textContent = !nearest ? "Unknown: no one is enrolled yet. Name this face to enrol it."
    : face.identity !== "unknown"
      ? `${face.identity}: distance ${nearest.distance.toFixed(3)}, below the threshold ${threshold}.`
      : `Unknown: no one is below the threshold ${threshold}. The nearest people:`;
  const measured = point.far === null ? "" : ` (on LFW View 1 it accepts ${(100 * point.far).toFixed(2)}% of ` +
    `different people and ${(100 * point.tar).toFixed(1)}% of the same)`;
  $("face-point").textContent = `Operating point: a face is named when its squared L2 distance to someone is below ` +
    `${threshold}, the threshold ${point.far_target ? `for a false-accept rate of ${point.far_target}` : point.source}` +
    `${measured}.`;
  // A named face's list holds the others who come close; an unknown face's, everyone nearest.
  const listed = face.identity !== "unknown" ? face.matches.slice(1) : face.matches;
  $("face-matches").replaceChildren(...listed.map((m) => el("li", {},
    `${m.name}: ${m.distance.toFixed(3)}${m.distance < point.threshold ? " (also below the threshold)" : ""}`)));
  $("face-others").hidden = face.identity === "unknown" || !listed.length;
  $("face-matches").hidden = !listed.length;
  $("enrol-name").value = face.identity === "unknown" ? "" : face.identity;
  $("face-panel").hidden = false;
  // Beside the photo on a wide screen; on a narrow one a sheet over the page's foot, with the face above it.
  if (window.matchMedia("(max-width: 720px)").matches) box.parentElement.scrollIntoView({ block: "start" });
  $("face-panel").focus({ preventScroll: true });
}

function closeFace() {
  $("face-panel").hidden = true;
  if (shown) {
    shown.box.classList.remove("selected");
    if (shown.box.isConnected) shown.box.focus();
  }
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
  if (badName(name)) return say(badName(name));
  const form = new FormData();
  form.append("images", file, file.name);
  form.append("face", String(face.index));
  try {
    const answer = await api(`/v1/people/${encodeURIComponent(name)}/faces`, { method: "POST", body: form });
    if (answer.added.length) say(`Enrolled ${file.name} as ${name}.`, "info");
    else if (answer.skipped.length) say(`That face is enrolled already, as ${answer.skipped[0].enrolled_as}.`, "info");
    $("face-panel").hidden = true;
    shown = null;
    await Promise.all([refreshPhotos(), loadGallery()]); // this photo and the others, recognised now
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
        el("span", { class: "source", title: plain(f.source) }, plain(f.source)));
      if (state.scope === "admin") {
        const remove = el("button", { type: "button", class: "danger", "aria-label": `delete ${plain(f.source)}` },
          "Delete face");
        remove.addEventListener("click", () => deleteFace(name, f.id, plain(f.source)));
        item.append(remove);
      }
      return item;
    }));
    $("person-faces").replaceChildren(...items);
    $("person-empty").hidden = items.length > 0;
    $("person").hidden = false;
    $("person-name").focus();
  } catch (err) {
    say(explain(err, `Opening ${name}`));
  }
}

async function deleteFace(name, id, source) {
  if (!window.confirm(`Delete the face from ${source} from ${name}'s faces in the gallery?`)) return;
  try {
    await api(`/v1/people/${encodeURIComponent(name)}/faces/${id}`, { method: "DELETE" });
    say(`Deleted the face from ${source} from ${name}.`, "info");
    await Promise.all([loadGallery(), refreshPhotos()]);
    if (state.people.some((p) => p.name === name)) await openPerson(name);
  } catch (err) {
    say(explain(err, `Deleting the face from ${source}`));
  }
}

$("delete-person").addEventListener("click", async () => {
  const name = $("person").dataset.name;
  if (!window.confirm(`Delete ${name} and every face of theirs from the gallery?`)) return;
  try {
    const answer = await api(`/v1/people/${encodeURIComponent(name)}`, { method: "DELETE" });
    say(`Deleted ${name} (${answer.faces_removed} face${answer.faces_removed === 1 ? "" : "s"}).`, "info");
    $("person").hidden = true;
    await Promise.all([loadGallery(), refreshPhotos()]);
  } catch (err) {
    say(explain(err, `Deleting ${name}`));
  }
});

$("rename-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("person").dataset.name;
  const renamed = $("rename-input").value.trim();
  if (badName(renamed)) return say(badName(renamed));
  try {
    await api(`/v1/people/${encodeURIComponent(name)}`, { method: "PATCH", json: { name: renamed } });
    say(`Renamed ${name} to ${renamed}.`, "info");
    await Promise.all([loadGallery(), refreshPhotos()]);
    await openPerson(renamed);
  } catch (err) {
    say(explain(err, `Renaming ${name}`));
  }
});
$("person-close").addEventListener("click", () => { $("person").hidden = true; });

start();
