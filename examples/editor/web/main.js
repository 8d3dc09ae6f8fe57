// The editor page's script: one Y.Doc per page, kept in sync with the room
// /parties/main/{room} of the Go server by y-partykit's provider, shown and
// edited in CodeMirror 6 through y-codemirror.next, which also draws the
// other people's cursors and selections from the provider's awareness.
//
// Bundled by build.sh into ../static/editor.js; index.html loads it.

import * as Y from "yjs";
import YPartyKitProvider from "y-partykit/provider";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, drawSelection, highlightActiveLine } from "@codemirror/view";
import { defaultKeymap, indentWithTab } from "@codemirror/commands";

// Colors for people, picked by their Yjs client id: a strong one for the
// caret and name, a light one for the selection.
const palette = [
  ["#d1495b", "#d1495b33"],
  ["#00798c", "#00798c33"],
  ["#edae49", "#edae4944"],
  ["#3d5a80", "#3d5a8033"],
  ["#6a4c93", "#6a4c9333"],
  ["#2a9d8f", "#2a9d8f33"],
  ["#e76f51", "#e76f5133"],
  ["#588157", "#58815733"],
];

/** The page's settings from its URL: ?room= (default "welcome") and ?name=. */
function settings() {
  const q = new URLSearchParams(location.search);
  const room = q.get("room") || "welcome";
  const name = (q.get("name") || "").trim() || `guest-${Math.floor(1000 + Math.random() * 9000)}`;
  return { room, name: name.slice(0, 40) };
}

const { room, name } = settings();
const doc = new Y.Doc();
const text = doc.getText("codemirror");

// The provider dials ws(s)://{host}/parties/main/{room}?_pk={uuid}. The
// BroadcastChannel between tabs of one browser is off, so that everything a
// tab sees went through the server.
const provider = new YPartyKitProvider(location.host, room, doc, {
  protocol: location.protocol === "https:" ? "wss" : "ws",
  disableBc: true,
});
const [color, colorLight] = palette[doc.clientID % palette.length];
provider.awareness.setLocalStateField("user", { name, color, colorLight });

const view = new EditorView({
  parent: document.querySelector("#editor"),
  state: EditorState.create({
    doc: text.toString(),
    extensions: [
      lineNumbers(),
      drawSelection(),
      highlightActiveLine(),
      EditorView.lineWrapping,
      keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]),
      yCollab(text, provider.awareness),
      // The others' names stay shown above their carets (the binding shows
      // them on hover only).
      EditorView.theme({ ".cm-ySelectionInfo": { opacity: 1, fontFamily: "inherit" } }),
    ],
  }),
});

// The header: room, own name, connection state and who is here.
document.querySelector("#room").textContent = room;
document.querySelector("#me").textContent = name;
document.querySelector("#me").style.borderColor = color;
document.title = `${room} — party editor`;

const status = document.querySelector("#status");
function showStatus() {
  const state = provider.synced ? "synced" : provider.wsconnected ? "connected" : "connecting";
  status.dataset.state = state;
  status.textContent = { synced: "synced", connected: "syncing…", connecting: "connecting…" }[state];
}
provider.on("status", showStatus);
provider.on("sync", showStatus);
showStatus();

const people = document.querySelector("#people");
function showPeople() {
  const items = [];
  for (const [client, state] of provider.awareness.getStates()) {
    if (!state.user) continue;
    const li = document.createElement("li");
    li.textContent = state.user.name;
    li.style.background = state.user.color;
    if (client === doc.clientID) li.className = "me";
    items.push(li);
  }
  items.sort((a, b) => a.textContent.localeCompare(b.textContent));
  people.replaceChildren(...items);
  people.dataset.count = String(items.length);
}
provider.awareness.on("change", showPeople);
showPeople();

view.focus();

// For tests and the console: the document, the provider and the view.
window.editor = { doc, text, provider, view };
