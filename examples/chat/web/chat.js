// The chat page's client: the browser's plain WebSocket to /party/{room}.
// Test hooks: #room, #name, #status (data-state: connecting, open, closed),
// #messages (one li per message), #input, #send.
const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
const name = params.get("name") || "guest-" + Math.random().toString(36).slice(2, 6);
const $ = (id) => document.getElementById(id);
$("room").textContent = room;
$("name").textContent = name;

function show(text, kind) {
  const li = document.createElement("li");
  li.textContent = text; // textContent, never innerHTML: messages are untrusted
  if (kind) li.className = kind;
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function status(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

// The connection id (_pk) is our name: the server's welcome and join/leave
// notices use it. Reconnect a second after a close, unless another tab took
// our name (4409: replaced by a newer connection with the same id).
let ws;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/party/${encodeURIComponent(room)}?_pk=${encodeURIComponent(name)}`);
  ws.onopen = () => status("open", "connected");
  ws.onmessage = (e) => show(e.data, /^(Welcome,|Heads up!|So sad!) /.test(e.data) ? "notice" : "");
  ws.onclose = (e) => {
    if (e.code === 4409) return status("closed", `${name} joined from another tab`);
    status("closed", "disconnected, retrying…");
    setTimeout(connect, 1000);
  };
}
connect();

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || ws.readyState !== WebSocket.OPEN) return;
  ws.send(`${name}: ${text}`);
  show(`${name}: ${text}`, "mine"); // the server sends it to everyone but us
  $("input").value = "";
});
