/*
 * eventsource browser client: one Server-Sent Events connection per client
 * carrying every listen key and task (the server-event-client of the
 * original design). No build step: load it with <script src="/client.js">
 * and use the global EventSourceClient.
 *
 *   const c = new EventSourceClient("http://localhost:8080", {
 *     notify(key, payload) { ... }, completed(task, info) { ... }, closed(reason) { ... },
 *   });
 *   await c.ready;
 *   await c.listen("domain:orders");
 */
(function (global) {
  "use strict";

  /** Names of the server's session events, each passed to the callback of the same name. */
  const EVENTS = ["registered", "notify", "lost", "row", "progress", "completed", "failed", "cancelled", "reconnect", "closed"];

  class EventSourceClient {
    /**
     * @param {string} baseURL where the gateway answers, e.g. "http://localhost:8080" ("" for this page's origin)
     * @param {object} callbacks any of registered(id), notify(key, payload), lost(key, reason)
     *   (the key's notifies may have a hole: read what was missed with a fetch task), row(task, row),
     *   progress(task, info), completed(task, info), failed(task, error, info), cancelled(task),
     *   closed(reason), error(err), state(state)
     * @param {{token?: string}} [options] a JWT sent as Authorization (and as access_token on the stream)
     */
    constructor(baseURL, callbacks, options) {
      this.baseURL = (baseURL || "").replace(/\/+$/, "");
      this.callbacks = callbacks || {};
      this.token = (options && options.token) || "";
      this.id = null;
      this.lastEventId = "";
      this.source = null;
      this.closed = false;
      this.retryDelay = 500;
      this.retryTimer = null;
      /** Resolves with the session id once the stream is registered. */
      this.ready = new Promise((resolve, reject) => {
        this._resolveReady = resolve;
        this._rejectReady = reject;
      });
      this._start().catch((err) => {
        this._emit("error", err);
        this._rejectReady(err);
      });
    }

    /** Listens to a key: "domain:D", "domain:D/name:N", "pid:P", "tick" or "listeners-changed". */
    async listen(key) {
      await this.ready;
      return this._post(`/sessions/${this.id}/listen`, { key });
    }

    /** Stops listening to a key. */
    async unlisten(key) {
      await this.ready;
      return this._post(`/sessions/${this.id}/unlisten`, { key });
    }

    /**
     * Submits a task: {type: "fetch", query: {...JSON-SQL $select}} or {type: "persist", events: [...]}.
     * Resolves with the task id; its rows, progress and end arrive as callbacks.
     */
    async submitTask(task) {
      await this.ready;
      const res = await this._post(`/sessions/${this.id}/tasks`, task);
      return res.task;
    }

    /** Cancels a task; the cancelled callback follows. */
    async cancelTask(task) {
      await this.ready;
      return this._request("DELETE", `/sessions/${this.id}/tasks/${encodeURIComponent(task)}`);
    }

    /**
     * Persists one event ({pid, domain, name, data, eventId?}) or an array; resolves with their ids.
     * An event's eventId (1 to 64 printable ASCII characters) makes the post safe to send again:
     * a retry with the same ids and content resolves with the stored events' ids, storing nothing.
     * @param {{expectedVersion?: number}} [options] expectedVersion: store the events only if their
     *   stream (they must all share one domain and pid) has exactly that many events (0: none yet);
     *   otherwise the promise rejects with an error whose status is 409 and code "conflict".
     */
    async postEvent(events, options) {
      const res = await this.persist(events, options);
      return res.ids;
    }

    /**
     * postEvent, resolving with the whole answer: {ids, duplicate} (duplicate: every event id was
     * stored already with the same content, nothing was stored).
     */
    async persist(events, options) {
      const headers = {};
      const expected = options && options.expectedVersion;
      if (expected !== undefined && expected !== null) {
        if (!Number.isSafeInteger(expected) || expected < 0) {
          throw new TypeError(`expectedVersion must be an integer from 0, got ${expected}`);
        }
        headers["If-Match"] = `"${expected}"`;
      }
      const res = await this._request("POST", "/events", events, headers);
      return { ids: res.ids, duplicate: res.duplicate === true };
    }

    /** Ends the session: the server answers on the stream with closed, then the connection ends. */
    async disconnect() {
      await this.ready;
      this.closed = true;
      clearTimeout(this.retryTimer);
      try {
        await this._post(`/sessions/${this.id}/disconnect`, {});
      } finally {
        // The closed event may already have arrived and closed the source.
        if (this.source) {
          setTimeout(() => this._closeSource(), 1000);
        }
      }
    }

    async _start() {
      const res = await this._post("/sessions", {});
      this.id = res.id;
      this._open();
    }

    /** Opens the stream, resuming after the last session message seen. */
    _open() {
      const params = new URLSearchParams();
      if (this.token) params.set("access_token", this.token);
      if (this.lastEventId) params.set("lastEventId", this.lastEventId);
      const query = params.toString();
      const url = `${this.baseURL}/sessions/${this.id}/stream${query ? "?" + query : ""}`;
      const source = new EventSource(url);
      this.source = source;
      this._emit("state", "connecting");
      source.onopen = () => {
        this.retryDelay = 500;
        this._emit("state", "open");
      };
      source.onerror = () => {
        if (this.closed) return;
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (an HTTP error): open a new stream ourselves,
          // resuming where this one stopped.
          this._emit("state", "reconnecting");
          this._reopenLater();
        } else {
          // The browser reconnects by itself, sending Last-Event-ID.
          this._emit("state", "reconnecting");
        }
      };
      for (const name of EVENTS) {
        source.addEventListener(name, (ev) => this._dispatch(name, ev));
      }
    }

    _reopenLater() {
      this._closeSource();
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this._open(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 10000);
    }

    _closeSource() {
      if (this.source) {
        this.source.close();
        this.source = null;
      }
    }

    _dispatch(name, ev) {
      // registered carries the resumption point, not a new message.
      if (ev.lastEventId && name !== "registered") this.lastEventId = ev.lastEventId;
      let data = null;
      try {
        data = ev.data ? JSON.parse(ev.data) : null;
      } catch (err) {
        this._emit("error", new Error(`bad ${name} message: ${err.message}`));
        return;
      }
      switch (name) {
        case "registered":
          this._emit("state", "open");
          this._resolveReady(data.id);
          this._emit("registered", data.id);
          break;
        case "notify":
          this._emit("notify", data.key, data);
          break;
        case "lost":
          this._emit("lost", data.key, data.reason);
          break;
        case "row":
          this._emit("row", data.task, data.row);
          break;
        case "progress":
        case "completed":
          this._emit(name, data.task, data);
          break;
        case "failed":
          // info.reason is "conflict" for a persist task that met what is stored.
          this._emit("failed", data.task, data.error, data);
          break;
        case "cancelled":
          this._emit("cancelled", data.task);
          break;
        case "reconnect":
          // The server ended this connection (a slow reader, a restart): the
          // browser reconnects with Last-Event-ID and nothing is lost.
          this._emit("state", "reconnecting");
          break;
        case "closed":
          this.closed = true;
          this._closeSource();
          this._emit("state", "closed");
          this._emit("closed", data && data.reason);
          break;
      }
    }

    _emit(name, ...args) {
      const fn = this.callbacks[name];
      if (typeof fn !== "function") return;
      try {
        fn.apply(this.callbacks, args);
      } catch (err) {
        if (name !== "error") this._emit("error", err);
      }
    }

    _post(path, body) {
      return this._request("POST", path, body);
    }

    async _request(method, path, body, extraHeaders) {
      const headers = Object.assign({}, extraHeaders);
      if (this.token) headers.Authorization = `Bearer ${this.token}`;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const res = await fetch(this.baseURL + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let data = {};
      if (text) {
        try {
          data = JSON.parse(text);
        } catch (err) {
          throw new Error(`${method} ${path}: ${res.status}: ${text.slice(0, 200)}`);
        }
      }
      if (!res.ok) {
        const err = new Error(data.error || `${method} ${path}: ${res.status}`);
        err.status = res.status;
        err.code = data.code;
        throw err;
      }
      return data;
    }
  }

  global.EventSourceClient = EventSourceClient;
})(typeof window !== "undefined" ? window : globalThis);
