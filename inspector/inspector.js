// The party inspector's page: polls state.json every second (and room.json
// for the room clicked) and redraws its tables. Every string from the server
// is put in the page as text, never as HTML: room ids, connection ids and
// tags are chosen by clients.
"use strict";

const period = 1000; // ms between polls
let previous = null; // the last state.json, for rates
let selected = null; // {party, id} of the room whose connections are shown

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "data") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  e.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return e;
}

const num = (n) => Number(n).toLocaleString("en-US");
const plural = (n, word) => `${num(n)} ${word}${n === 1 ? "" : "s"}`;
const td = (v, cls = "num") => el("td", { class: cls }, v);

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function micros(seconds) {
  if (seconds < 1e-3) return `${(seconds * 1e6).toFixed(0)}µs`;
  if (seconds < 1) return `${(seconds * 1e3).toFixed(1)}ms`;
  return `${seconds.toFixed(2)}s`;
}

/** Per second, from counter values now and before over elapsed ms; "–" without a before. */
function rate(now, before, elapsed) {
  if (before === undefined || now < before || elapsed <= 0) return "–";
  return ((now - before) / (elapsed / 1000)).toFixed(1);
}

function setStatus(state, text) {
  const s = document.getElementById("status");
  s.dataset.state = state;
  s.textContent = text;
}

async function getJSON(url) {
  const resp = await fetch(url, { cache: "no-store" });
  if (!resp.ok) {
    const err = new Error(`${url}: ${resp.status} ${(await resp.text()).trim()}`);
    err.status = resp.status;
    throw err;
  }
  return resp.json();
}

function drawParties(state) {
  const before = new Map(); // party \n room -> messages received at the last poll
  for (const p of previous?.parties ?? []) for (const r of p.rooms) before.set(`${p.name}\n${r.id}`, r.messages_received);
  const elapsed = previous ? state.time - previous.time : 0;
  const sections = state.parties.map((p) => {
    const shown = p.rooms.length < p.rooms_total ? ` (the ${p.rooms.length} most connected shown)` : "";
    const rows = p.rooms.map((r) =>
      el(
        "tr",
        { data: { party: p.name, room: r.id }, class: selected?.party === p.name && selected?.id === r.id ? "selected" : "" },
        td(el("code", {}, r.id), "wrap"),
        td(num(r.connections), "num connections"),
        td(rate(r.messages_received, before.get(`${p.name}\n${r.id}`), elapsed), "num rate"),
        td(`${num(r.queued_messages)} / ${bytes(r.queued_bytes)}`),
        td(duration(r.age_seconds)),
      ),
    );
    if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "no rooms in memory")));
    return el(
      "div",
      { data: { party: p.name } },
      el("h2", {}, `Party ${p.name}: ${plural(p.rooms_total, "room")}, ${plural(p.connections, "connection")}${shown}`),
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, el("th", {}, "room"), el("th", { class: "num" }, "connections"),
          el("th", { class: "num" }, "messages/s"), el("th", { class: "num" }, "queued"), el("th", { class: "num" }, "age"))),
        el("tbody", {}, ...rows),
      ),
    );
  });
  document.getElementById("parties").replaceChildren(...sections);
}

/** The rows of the metrics table: a label and, per party, what to show. */
function statRows(state) {
  const elapsed = previous ? state.time - previous.time : 0;
  const prev = (name) => previous?.parties.find((p) => p.name === name)?.stats ?? {};
  const nonzero = (m) =>
    Object.entries(m ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${num(n)}`).join(", ") || "0";
  const sum = (m) => Object.values(m ?? {}).reduce((a, b) => a + b, 0);
  return [
    ["rooms", (s) => num(s.rooms)],
    ["connections", (s) => num(s.connections)],
    ["opened", (s) => num(s.connections_opened)],
    ["closed", (s) => `${num(sum(s.connections_closed))}${sum(s.connections_closed) ? ` (${nonzero(s.connections_closed)})` : ""}`],
    ["messages in", (s, name) => `${num(s.messages_received)} · ${rate(s.messages_received, prev(name).messages_received, elapsed)}/s`],
    ["bytes in", (s) => bytes(s.bytes_received)],
    ["messages out", (s, name) => `${num(s.messages_sent)} · ${rate(s.messages_sent, prev(name).messages_sent, elapsed)}/s`],
    ["bytes out", (s) => bytes(s.bytes_sent)],
    ["sends refused", (s) => num(s.sends_refused)],
    ["upgrades refused", (s) => nonzero(s.upgrades_refused)],
    ["handler panics", (s) => nonzero(s.handler_panics)],
    ...handlerNames(state).map((h) => [
      `${h} calls`,
      (s) => {
        const d = s.handler_durations[h];
        return d ? `${num(d.count)} · mean ${micros(d.sum_seconds / d.count)}` : "0";
      },
    ]),
  ];
}

function handlerNames(state) {
  const names = new Set();
  for (const p of state.parties) for (const h of Object.keys(p.stats.handler_durations)) names.add(h);
  return [...names].sort();
}

function drawStats(state) {
  const table = document.getElementById("stats");
  table.tHead.replaceChildren(el("tr", {}, el("th", {}, ""), ...state.parties.map((p) => el("th", {}, p.name))));
  const rows = statRows(state).map(([label, show]) =>
    el("tr", {}, el("td", {}, label), ...state.parties.map((p) => td(show(p.stats, p.name), "wrap"))),
  );
  const unrouted = Object.entries(state.upgrades_refused);
  if (unrouted.length > 0) {
    const text = unrouted.map(([k, n]) => `${k} ${num(n)}`).join(", ");
    rows.push(el("tr", {}, el("td", {}, "refused, no party"), el("td", { class: "wrap", colspan: state.parties.length }, text)));
  }
  table.tBodies[0].replaceChildren(...rows);
}

async function drawRoom() {
  const section = document.getElementById("room");
  section.hidden = selected === null;
  if (selected === null) return;
  document.getElementById("room-name").textContent = `${selected.party}/${selected.id}`;
  const note = document.getElementById("room-note");
  const body = document.querySelector("#connections tbody");
  let room;
  try {
    room = await getJSON(`room.json?party=${encodeURIComponent(selected.party)}&id=${encodeURIComponent(selected.id)}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    note.textContent = "This room is no longer in memory.";
    body.replaceChildren();
    return;
  }
  const shown = room.connections.length < room.connections_total ? `, the ${room.connections.length} longest queues shown` : "";
  note.textContent = `${plural(room.connections_total, "connection")}${shown}.`;
  const rows = room.connections.map((c) =>
    el(
      "tr",
      { data: { connection: c.id }, class: c.closing ? "closing" : "" },
      td(el("code", {}, c.id), "wrap"),
      td(c.tags.join(", ") || "–", "wrap"),
      td(el("code", {}, c.remote_addr), ""),
      td(`${num(c.queued_messages)} / ${bytes(c.queued_bytes)}`),
      td(duration(c.connected_seconds) + (c.closing ? " (closing)" : "")),
    ),
  );
  if (rows.length === 0) rows.push(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "no connections")));
  body.replaceChildren(...rows);
}

async function tick() {
  try {
    const state = await getJSON("state.json");
    drawParties(state);
    drawStats(state);
    await drawRoom();
    previous = state;
    setStatus("live", `live · updated ${new Date(state.time).toLocaleTimeString()}`);
  } catch (err) {
    setStatus("error", `not updating: ${err.message}`);
  }
  setTimeout(tick, period);
}

document.getElementById("parties").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-room]");
  if (!row) return;
  selected = { party: row.dataset.party, id: row.dataset.room };
  for (const r of document.querySelectorAll("#parties tr.selected")) r.classList.remove("selected");
  row.classList.add("selected");
  drawRoom().catch((err) => setStatus("error", `not updating: ${err.message}`));
});

document.getElementById("room-close").addEventListener("click", () => {
  selected = null;
  for (const r of document.querySelectorAll("#parties tr.selected")) r.classList.remove("selected");
  drawRoom();
});

tick();
