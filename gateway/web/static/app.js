// The page: one EventSourceClient carries the watched key and the tasks.
"use strict";

const $ = (sel) => document.querySelector(sel);
const maxEvents = 200;

let watched = null; // {key, domain, name, pid}
let currentTask = null;
let starting = false; // a task was submitted and its id is not known yet
let early = [];       // its messages, which may overtake the reply to the submit
let columns = null;

// onTask runs fn for a message of the current task, or keeps it until the
// submit returns the id.
function onTask(task, fn) {
  if (task === currentTask) fn();
  else if (starting) early.push({ task, fn });
}

const client = new EventSourceClient("", {
  state(state) {
    const el = $("#state");
    el.textContent = state;
    el.className = "state " + state;
  },
  error(err) {
    const el = $("#state");
    el.textContent = "error: " + err.message;
    el.className = "state error";
  },
  notify(key, payload) {
    if (!watched || key !== watched.key || !payload.event) return;
    const ev = payload.event;
    // A pid key hears every domain: keep to the one asked for.
    if (ev.domain !== watched.domain || (watched.name && ev.name !== watched.name)) return;
    showEvent(ev);
  },
  lost(key, reason) {
    if (!watched || key !== watched.key) return;
    // Events may have committed unheard: say so; a task reads them.
    const el = $("#watching");
    el.textContent = `Some events of ${watched.domain} may be missing from the list (${reason}); run a task to read them. New ones still appear.`;
    el.className = "hint lost";
  },
  row(task, row) {
    onTask(task, () => showRow(row));
  },
  progress(task, info) {
    onTask(task, () => taskStatus(`running: ${info.rows ?? info.done} rows`, ""));
  },
  completed(task, info) {
    onTask(task, () => {
      taskStatus(`completed: ${info.rows ?? (info.ids || []).length} rows`, "ok");
      endTask();
    });
  },
  failed(task, error) {
    onTask(task, () => {
      taskStatus(`failed: ${error}`, "bad");
      endTask();
    });
  },
  cancelled(task) {
    onTask(task, () => {
      taskStatus("cancelled", "bad");
      endTask();
    });
  },
  closed(reason) {
    $("#state").textContent = "closed" + (reason ? ` (${reason})` : "");
  },
});

function showEvent(ev) {
  const li = document.createElement("li");
  li.className = "new";
  li.dataset.id = ev.id;
  const id = span("id", "#" + ev.id);
  const name = span("name", ev.name);
  const meta = span("meta", `${ev.pid} · ${ev.domain} · ${new Date(ev.timestamp).toLocaleString()}`);
  const data = document.createElement("pre");
  data.textContent = JSON.stringify(ev.data);
  li.append(id, name, meta, data);
  const list = $("#events");
  list.prepend(li);
  while (list.children.length > maxEvents) list.lastElementChild.remove();
}

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

$("#watch").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const domain = f.domain.value.trim(), name = f.name.value.trim(), pid = f.pid.value.trim();
  const key = pid ? `pid:${pid}` : name ? `domain:${domain}/name:${name}` : `domain:${domain}`;
  try {
    if (watched && watched.key !== key) await client.unlisten(watched.key);
    await client.listen(key);
    watched = { key, domain, name, pid };
    $("#events").replaceChildren();
    $("#watching").textContent = `Watching ${domain}${name ? " / " + name : ""}${pid ? " (pid " + pid + ")" : ""}: new events appear at the top.`;
    $("#watching").className = "hint";
    // Posting and querying start from what is watched.
    const post = $("#post").elements;
    if (!post.domain.value) post.domain.value = domain;
    if (!post.name.value && name) post.name.value = name;
    if (!post.pid.value && pid) post.pid.value = pid;
    const q = $("#task").elements.query;
    try {
      const query = JSON.parse(q.value);
      if (query.$select && query.$select.$where) {
        query.$select.$where.domain = domain;
        q.value = JSON.stringify(query);
      }
    } catch { /* the user's own query: leave it */ }
  } catch (err) {
    $("#watching").textContent = "Could not watch: " + err.message;
  }
});

$("#post").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const out = $("#post-result");
  let data;
  try {
    data = JSON.parse(f.data.value);
    f.data.classList.remove("invalid");
  } catch (err) {
    f.data.classList.add("invalid");
    out.textContent = "data is not JSON: " + err.message;
    out.className = "result bad";
    return;
  }
  try {
    const ids = await client.postEvent({ pid: f.pid.value.trim(), domain: f.domain.value.trim(), name: f.name.value.trim(), data });
    out.textContent = `stored as #${ids[0]}`;
    out.className = "result ok";
  } catch (err) {
    out.textContent = err.message;
    out.className = "result bad";
  }
});

$("#task").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  let query;
  try {
    query = JSON.parse(f.query.value);
    f.query.classList.remove("invalid");
  } catch (err) {
    f.query.classList.add("invalid");
    taskStatus("query is not JSON: " + err.message, "bad");
    return;
  }
  columns = null;
  $("#rows thead").replaceChildren();
  $("#rows tbody").replaceChildren();
  currentTask = null;
  starting = true;
  early = [];
  taskStatus("starting…", "");
  try {
    currentTask = await client.submitTask({ type: "fetch", query });
    $("#cancel").disabled = false;
    taskStatus(`running (${currentTask})`, "");
    for (const m of early) if (m.task === currentTask) m.fn();
  } catch (err) {
    taskStatus(err.message, "bad");
  } finally {
    starting = false;
    early = [];
  }
});

$("#cancel").addEventListener("click", async () => {
  if (currentTask) {
    try {
      await client.cancelTask(currentTask);
    } catch (err) {
      taskStatus(err.message, "bad");
    }
  }
});

function showRow(row) {
  if (!columns) {
    columns = Object.keys(row);
    const tr = document.createElement("tr");
    for (const c of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = c;
      tr.append(th);
    }
    $("#rows thead").append(tr);
  }
  const tr = document.createElement("tr");
  for (const c of columns) {
    const td = document.createElement("td");
    const v = row[c];
    td.textContent = typeof v === "string" ? v : JSON.stringify(v);
    tr.append(td);
  }
  $("#rows tbody").append(tr);
}

function taskStatus(text, cls) {
  const out = $("#task-status");
  out.textContent = text;
  out.className = "result " + cls;
}

function endTask() {
  $("#cancel").disabled = true;
}
