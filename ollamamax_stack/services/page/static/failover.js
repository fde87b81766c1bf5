// The port document's connection strategy: the endpoints in order (gateway, hub, fallback);
// when the socket drops, the next one; back to the primary as soon as it answers again.

export const OPEN_TIMEOUT_MS = 3000;  // a held port of a stopped service may queue, not refuse
export const PROBE_EVERY_MS = 2000;   // how often a page away from the primary tries it again
export const RETRY_ALL_MS = 2000;     // none answered: try them all again after this

// Open `url` and resolve with the socket and its greeting (the hub's first `nodes` message).
export function openChat(url, token, timeout = OPEN_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(token ? `${url}?token=${encodeURIComponent(token)}` : url);
    const timer = setTimeout(() => { ws.close(); reject(new Error("no answer")); }, timeout);
    ws.onmessage = (event) => {
      clearTimeout(timer);
      ws.onmessage = ws.onclose = ws.onerror = null;
      resolve({ ws, greeting: JSON.parse(event.data) });
    };
    ws.onerror = () => { clearTimeout(timer); reject(new Error("refused")); };
    ws.onclose = () => { clearTimeout(timer); reject(new Error("closed")); };
  });
}

// One live socket to the first endpoint that answers. Events: "open" {url, index},
// "notice" {text}, "message" {message}, "drop" {url}, "down" {}.
export class Failover extends EventTarget {
  constructor(endpoints, { token = "", busy = () => false } = {}) {
    super();
    this.endpoints = endpoints;
    this.token = token;
    this.busy = busy;          // a chat is streaming: do not move it to another socket
    this.ws = null;
    this.index = -1;
    this.generation = 0;       // a socket of an older generation is closed on purpose
    this.probing = false;
    this.quiet = false;        // every endpoint was said to be down: do not repeat it each round
    this.prober = setInterval(() => this.probePrimary(), PROBE_EVERY_MS);
  }

  get url() { return this.index >= 0 ? this.endpoints[this.index] : null; }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // Try every endpoint once, starting at `from`; adopt the first that answers.
  async connect(from = 0) {
    const generation = ++this.generation;
    this.drop();
    for (let step = 0; step < this.endpoints.length; step++) {
      const index = (from + step) % this.endpoints.length;
      const url = this.endpoints[index];
      try {
        const { ws, greeting } = await openChat(url, this.token);
        if (generation !== this.generation) { ws.close(); return; }
        this.adopt(index, ws, greeting, generation);
        return;
      } catch (error) {
        if (generation !== this.generation) return;
        if (!this.quiet) this.emit("notice", { text: `${url} did not answer (${error.message})` });
      }
    }
    this.quiet = true;
    this.emit("down", {});
    setTimeout(() => { if (generation === this.generation) this.connect(0); }, RETRY_ALL_MS);
  }

  adopt(index, ws, greeting, generation) {
    this.quiet = false;
    this.ws = ws;
    this.index = index;
    ws.onmessage = (event) => this.emit("message", { message: JSON.parse(event.data) });
    ws.onclose = () => {
      if (generation !== this.generation) return;  // we closed it ourselves
      const url = this.endpoints[index];
      const next = this.endpoints[(index + 1) % this.endpoints.length];
      this.ws = null;
      this.index = -1;
      this.emit("drop", { url });
      this.emit("notice", { text: `the connection to ${url} dropped: moving to ${next}` });
      this.connect(index + 1);
    };
    this.emit("open", { url: this.endpoints[index], index });
    this.emit("message", { message: greeting });
  }

  drop() {
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    this.ws = null;
  }

  // Away from the primary: open it; when it answers and no answer is streaming, move back.
  async probePrimary() {
    if (this.index <= 0 || this.probing || this.busy()) return;
    this.probing = true;
    try {
      const { ws, greeting } = await openChat(this.endpoints[0], this.token);
      if (this.index <= 0 || this.busy()) { ws.close(); return; }
      const away = this.url;
      const generation = ++this.generation;
      this.drop();
      this.adopt(0, ws, greeting, generation);
      this.emit("notice", { text: `${this.endpoints[0]} is back: moved from ${away} to it` });
    } catch {
      // still down: try again on the next tick
    } finally {
      this.probing = false;
    }
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  setToken(token) {
    this.token = token;
    this.connect(0);
  }
}
