// The page: one EventSourceClient carries the watched key and the tasks.
"use strict";

const $ = (sel) => document.querySelector(sel);
const maxEvents = 200;
// historySize is how many of the watched events already stored the list
// starts with, newest first.
const historySize = 50;

// watched is what the list shows: {key, domain, name, pid, count, error, lost}.
// count is how many stored events were read (null while they are read),
// error why they could not be, lost why live ones may be missing.
let watched = null;
let formTask = null; // the task the form ran last, whose rows the table shows
let formRuns = 0;    // counts the form's submits: a reply to an older one is dropped
let columns = null;

// Tasks by id: the handlers of their messages. A task's first messages may
// overtake the reply to its submit: while a submit is under way, messages
// of tasks not known yet wait in early.
const tasks = new Map();
let submitting = 0;
let early = [];

const terminal = new Set(["completed", "failed", "cancelled"]);

function deliver(id, name, args) {
  const h = tasks.get(id);
  if (!h) return false;
  if (terminal.has(name)) tasks.delete(id);
  h[name](...args);
  return true;
}

function taskMessage(id, name, ...args) {
  if (!deliver(id, name, args) && submitting > 0) early.push({ id, name, args });
}

// runTask submits a task whose messages go to handlers (row, progress,
// completed, failed, cancelled); started(id) runs once its id is known,
// before any of its messages. It resolves with the id.
async function runTask(body, handlers) {
  submitting++;
  try {
    const id = await client.submitTask(body);
    tasks.set(id, handlers);
    if (handlers.started) handlers.started(id);
    const overtook = early.filter((m) => m.id === id);
    early = early.filter((m) => m.id !== id);
    for (const m of overtook) deliver(id, m.name, m.args);
    return id;
  } finally {
    if (--submitting === 0) early = [];
  }
}

// dropTask forgets a task still running (what it still sends is ignored)
// and cancels it.
function dropTask(id) {
  if (id && tasks.delete(id)) client.cancelTask(id).catch(() => {});
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
    if (matches(watched, payload.event)) showEvent(payload.event, true);
  },
  lost(key, reason) {
    if (!watched || key !== watched.key) return;
    // Events may have committed unheard: say so; a task reads them.
    watched.lost = reason;
    showWatching(watched);
  },
  row(task, row) { taskMessage(task, "row", row); },
  progress(task, info) { taskMessage(task, "progress", info); },
  completed(task, info) { taskMessage(task, "completed", info); },
  failed(task, error) { taskMessage(task, "failed", error); },
  cancelled(task) { taskMessage(task, "cancelled"); },
  closed(reason) {
    $("#state").textContent = "closed" + (reason ? ` (${reason})` : "");
  },
});

// matches reports whether an event belongs to what is watched: a pid key
// hears every domain, so keep to the one asked for.
function matches(w, ev) {
  return ev.domain === w.domain && (!w.name || ev.name === w.name) && (!w.pid || ev.pid === w.pid);
}

// showEvent lists an event in id order, newest first, once: the stored
// ones read when the watch began and the live ones may overlap.
function showEvent(ev, live) {
  const list = $("#events");
  const id = Number(ev.id);
  let before = null;
  for (const li of list.children) {
    const other = Number(li.dataset.id);
    if (other === id) return;
    if (other < id) {
      before = li;
      break;
    }
  }
  const li = document.createElement("li");
  if (live) li.className = "new";
  li.dataset.id = ev.id;
  const idEl = span("id", "#" + ev.id);
  const name = span("name", ev.name);
  const meta = span("meta", `${ev.pid} · ${ev.domain} · ${new Date(ev.timestamp).toLocaleString()}`);
  const data = document.createElement("pre");
  data.textContent = JSON.stringify(ev.data);
  li.append(idEl, name, meta, data);
  list.insertBefore(li, before);
  while (list.children.length > maxEvents) list.lastElementChild.remove();
}

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

function showWatching(w) {
  const el = $("#watching");
  if (w.lost) {
    el.textContent = `Some events of ${w.domain} may be missing from the list (${w.lost}); run a task to read them. New ones still appear.`;
    el.className = "hint lost";
    return;
  }
  const what = `${w.domain}${w.name ? " / " + w.name : ""}${w.pid ? " (pid " + w.pid + ")" : ""}`;
  let stored;
  if (w.error) stored = `its latest events could not be read (${w.error})`;
  else if (w.count === null) stored = "reading its latest events…";
  else if (w.count === 0) stored = "no events yet";
  else if (w.count < historySize) stored = `its ${w.count} event${w.count === 1 ? "" : "s"} so far, newest first`;
  else stored = `its latest ${w.count} events, newest first`;
  el.textContent = `Watching ${what}: ${stored}; new ones appear at the top.`;
  el.className = w.error ? "hint lost" : "hint";
}

// readLatest lists the latest stored events of what w watches, read by a
// fetch task. Its key is listened to first, so that an event committed
// meanwhile is heard if the task misses it (one both read and heard is
// listed once).
async function readLatest(w) {
  const where = { domain: w.domain };
  if (w.name) where.name = w.name;
  if (w.pid) where.pid = w.pid;
  const query = { $select: { $columns: ["id", "timestamp", "pid", "domain", "name", "data"], $where: where, $orderBy: { id: -1 }, $limit: historySize } };
  let read = 0;
  const current = () => watched === w;
  const failed = (error) => {
    if (!current()) return;
    w.error = error;
    showWatching(w);
  };
  try {
    w.history = await runTask({ type: "fetch", query }, {
      row(row) {
        if (!current() || !matches(w, row)) return;
        read++;
        showEvent(row, false);
      },
      progress() {},
      completed() {
        if (!current()) return;
        w.count = read;
        showWatching(w);
      },
      failed,
      cancelled() { failed("cancelled"); },
    });
    if (!current()) dropTask(w.history);
  } catch (err) {
    failed(err.message);
  }
}

$("#watch").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const domain = f.domain.value.trim(), name = f.name.value.trim(), pid = f.pid.value.trim();
  const key = pid ? `pid:${pid}` : name ? `domain:${domain}/name:${name}` : `domain:${domain}`;
  try {
    if (watched) {
      dropTask(watched.history);
      if (watched.key !== key) await client.unlisten(watched.key);
    }
    await client.listen(key);
    watched = { key, domain, name, pid, count: null, error: "", lost: "" };
    $("#events").replaceChildren();
    showWatching(watched);
    readLatest(watched);
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
  // The table shows this task alone: the previous one is let go.
  const run = ++formRuns;
  dropTask(formTask);
  formTask = null;
  columns = null;
  $("#rows thead").replaceChildren();
  $("#rows tbody").replaceChildren();
  $("#cancel").disabled = true;
  taskStatus("starting…", "");
  const end = (text, cls) => {
    taskStatus(text, cls);
    $("#cancel").disabled = true;
  };
  try {
    await runTask({ type: "fetch", query }, {
      started(id) {
        if (run !== formRuns) {
          dropTask(id); // the form ran another task meanwhile
          return;
        }
        formTask = id;
        $("#cancel").disabled = false;
        taskStatus(`running (${id})`, "");
      },
      row: showRow,
      progress(info) { taskStatus(`running: ${info.rows ?? info.done} rows`, ""); },
      completed(info) { end(`completed: ${info.rows ?? (info.ids || []).length} rows`, "ok"); },
      failed(error) { end(`failed: ${error}`, "bad"); },
      cancelled() { end("cancelled", "bad"); },
    });
  } catch (err) {
    if (run === formRuns) end(err.message, "bad");
  }
});

$("#cancel").addEventListener("click", async () => {
  if (formTask) {
    try {
      await client.cancelTask(formTask);
    } catch (err) {
      taskStatus(err.message, "bad");
    }
  }
});

// showRow adds a row to the table, its first row naming the columns. A
// value stays on one line, cut short with an ellipsis when long: whole in
// its tooltip, and shown whole when clicked.
function showRow(row) {
  if (!columns) {
    columns = Object.keys(row);
    const tr = document.createElement("tr");
    for (const c of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = c;
      if (typeof row[c] === "number") th.className = "num";
      tr.append(th);
    }
    $("#rows thead").append(tr);
  }
  const tr = document.createElement("tr");
  for (const c of columns) {
    const v = row[c];
    const text = typeof v === "string" ? v : JSON.stringify(v) ?? "";
    const td = document.createElement("td");
    if (typeof v === "number") td.className = "num";
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = text;
    if (text.length > 40) value.title = text.length > 4000 ? text.slice(0, 4000) + "…" : text;
    td.append(value);
    tr.append(td);
  }
  $("#rows tbody").append(tr);
}

// A click on a value shows it whole, or on one line again.
$("#rows tbody").addEventListener("click", (e) => {
  const value = e.target.closest(".value");
  if (value && !window.getSelection().toString()) value.classList.toggle("whole");
});

function taskStatus(text, cls) {
  const out = $("#task-status");
  out.textContent = text;
  out.className = "result " + cls;
}
