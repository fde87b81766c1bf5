// The chat page: a model picker, streamed answers over /chat, stop, and who answered.
import { endpoints, names, API_BASE } from "./endpoints.js";
import { Failover } from "./failover.js";

const $ = (id) => document.getElementById(id);
const history = [];          // the conversation, as the node's /api/chat reads it
const running = new Map();   // chat id -> { turn, text, url }
const fromApi = new Set();   // models of /v1/models (the gateway)
let fromNodes = new Set();   // models of healthy nodes (the `nodes` message of any front end)
let nextId = 1;

const failover = new Failover(endpoints, { busy: () => running.size > 0 });

function label(url) { return url ? `${url} (${names[url] || "?"})` : "nothing"; }

function notice(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("notices").append(item);
}

function refreshModels() {
  const select = $("model");
  const chosen = select.value;
  const all = [...new Set([...fromApi, ...fromNodes])].sort();
  select.replaceChildren(...all.map((id) => new Option(id, id, false, id === chosen)));
}

function turn(role, text) {
  const element = document.createElement("div");
  element.className = `turn ${role}`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  element.append(body);
  $("log").append(element);
  element.scrollIntoView({ block: "end" });
  return element;
}

function finish(id, meta, failed = false) {
  const chat = running.get(id);
  if (!chat) return;
  running.delete(id);
  const line = document.createElement("span");
  line.className = "meta";
  line.textContent = meta;
  chat.turn.append(line);
  chat.turn.classList.toggle("failed", failed);
  chat.turn.classList.add("finished");
  $("stop").disabled = running.size === 0;
}

function onMessage(message) {
  const chat = running.get(message.id);
  if (message.type === "nodes") {
    fromNodes = new Set(message.nodes.filter((n) => n.healthy).flatMap((n) => n.models));
    refreshModels();
  } else if (message.type === "chunk" && chat) {
    chat.text += message.content || "";
    chat.turn.querySelector(".text").textContent = chat.text;
  } else if (message.type === "done" && chat) {
    chat.turn.querySelector(".text").textContent = message.content;
    chat.turn.dataset.endpoint = chat.url;
    chat.turn.dataset.node = message.node || "";
    history.push({ role: "assistant", content: message.content });
    finish(message.id, `answered over ${label(chat.url)} by node ${message.node}`);
  } else if (message.type === "error" && chat) {
    const stopped = message.code === "cancelled";
    finish(message.id, stopped ? `stopped (${label(chat.url)})`
      : `error ${message.code}: ${message.message} (${label(chat.url)})`, !stopped);
  }
}

function send() {
  const text = $("prompt").value.trim();
  const model = $("model").value;
  if (!text) return;
  if (!model) { notice("no model to ask: no healthy node serves one yet"); return; }
  const id = nextId++;
  history.push({ role: "user", content: text });
  turn("user", text);
  const answer = turn("assistant", "");
  running.set(id, { turn: answer, text: "", url: failover.url });
  $("stop").disabled = false;
  $("prompt").value = "";
  if (!failover.send({ type: "chat", id, model, stream: true, messages: [...history] })) {
    finish(id, "not sent: no endpoint is connected; try again in a moment", true);
  }
}

async function loadModels(key) {
  // /v1/models is the gateway's; a page the hub served asks the hub's `nodes` instead.
  if (!API_BASE || new URL(API_BASE).origin !== location.origin) return;
  try {
    const response = await fetch(`${API_BASE}/v1/models`,
      { headers: key ? { Authorization: `Bearer ${key}` } : {} });
    if (!response.ok) return;
    fromApi.clear();
    for (const model of (await response.json()).data) fromApi.add(model.id);
    refreshModels();
  } catch {
    // the gateway is down: the nodes message fills the picker
  }
}

async function showKeyFieldIfAuthIsOn() {
  try {
    const health = await (await fetch("/health")).json();
    $("key-field").hidden = health.auth === "off";
  } catch {
    $("key-field").hidden = false;
  }
}

failover.addEventListener("open", (event) => {
  $("connection").textContent = `connected to ${label(event.detail.url)}`;
  $("connection").className = "up";
  $("connection").dataset.endpoint = event.detail.url;
});
failover.addEventListener("drop", (event) => {
  $("connection").textContent = `lost ${label(event.detail.url)}; reconnecting…`;
  $("connection").className = "down";
  delete $("connection").dataset.endpoint;
  for (const id of [...running.keys()]) {
    finish(id, `interrupted: the connection to ${label(event.detail.url)} dropped`, true);
  }
});
failover.addEventListener("down", () => {
  $("connection").textContent = `no endpoint answers (${endpoints.join(", ")}); retrying…`;
  $("connection").className = "down";
});
failover.addEventListener("notice", (event) => notice(event.detail.text));
failover.addEventListener("message", (event) => onMessage(event.detail.message));

$("ask").addEventListener("submit", (event) => { event.preventDefault(); send(); });
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(); }
});
$("stop").addEventListener("click", () => {
  for (const id of running.keys()) failover.send({ type: "cancel", id });
});
$("key").addEventListener("change", () => {
  const key = $("key").value.trim();
  loadModels(key);
  failover.setToken(key);
});

await showKeyFieldIfAuthIsOn();
loadModels("");
failover.connect(0);
