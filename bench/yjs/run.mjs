// Yjs rooms, party beside y-websocket's own Node server, in one run:
//
//	cd bench/yjs && npm ci && node run.mjs [flags]
//
// (a) sync of a 1 MB document to a new client, (b) a room of 100 editors
// typing; see bench/README.md. Prints a Markdown table, and with -out FILE
// writes it there too.
//
// Flags: -servers party-file,party-mem,y-websocket  -reps 10  -editors 100
// -rate 5 (inserts/s per editor)  -seconds 10  -workers 2  -apply none|all
// -scenarios a,b  -rounds 1  -out FILE

import { execFileSync } from "node:child_process";
import { cpus, totalmem, loadavg, release } from "node:os";
import { writeFileSync } from "node:fs";
import { buildDocument } from "./lib/doc.mjs";
import { servers, buildAll, startServer, repoRoot } from "./lib/servers.mjs";
import { syncScenario, editorsScenario, percentile } from "./lib/scenarios.mjs";

const opts = {
  servers: "party-file,party-mem,y-websocket",
  reps: 10,
  editors: 100,
  rate: 5,
  seconds: 10,
  workers: 2,
  rounds: 1,
  scenarios: "a,b",
  apply: "none",
  out: "",
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^-+/, "");
  if (!(k in opts) || argv[i + 1] === undefined) throw new Error(`unknown flag or missing value: ${argv[i]}`);
  opts[k] = typeof opts[k] === "number" ? Number(argv[i + 1]) : argv[i + 1];
}
const names = opts.servers.split(",");
for (const n of names) if (!servers[n]) throw new Error(`unknown server ${n}; known: ${Object.keys(servers).join(", ")}`);

const header = machine();
console.error(header.join("\n"));
buildAll(names);
const seed = buildDocument();
console.error(`document: ${seed.bytes} bytes, ${seed.chars} characters in ${seed.structs} items, sent as ${seed.updates.length} updates`);

const results = Object.fromEntries(names.map((n) => [n, { sync: [], editors: [] }]));
for (let round = 0; round < opts.rounds; round++) {
  for (const scenario of opts.scenarios.split(",")) {
    for (const name of rotate(names, round)) {
      const server = await startServer(name);
      try {
        if (scenario === "a") results[name].sync.push(await syncScenario(server, { seed, reps: opts.reps }));
        else results[name].editors.push(await editorsScenario(server, opts));
        console.error(`round ${round + 1}: ${scenario} on ${name} done`);
      } finally {
        await server.stop();
      }
    }
  }
}

const table = [...header, "", ...syncTable(), "", ...editorsTable(), ""].join("\n");
console.log(table);
if (opts.out) writeFileSync(opts.out, table);

/** names, rotated by k: each round starts with another server, so that drift of the shared machine spreads. */
function rotate(names, k) {
  return names.map((_, i) => names[(i + k) % names.length]);
}

function machine() {
  const go = execFileSync("go", ["version"], { cwd: repoRoot, encoding: "utf8" }).trim();
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
  return [
    `Run ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC at ${commit}: \`node run.mjs ${argv.join(" ")}\` (in bench/yjs)`,
    "",
    `Machine: ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, ` +
      `${go.replace("go version ", "")}, Node ${process.version}; load average before the run ${loadavg().map((l) => l.toFixed(2)).join(" ")}. ` +
      "Clients and server share the machine.",
    "",
    "Servers:",
    ...names.map((n) => `- \`${n}\`: ${servers[n].what}`),
  ];
}

function f1(x) {
  return x.toFixed(1);
}

function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
}

function syncTable() {
  if (!names.some((n) => results[n].sync.length)) return [];
  const rows = [
    `**(a) sync of a ${(seed.bytes / 1e6).toFixed(2)} MB document (${seed.chars} characters, ${seed.structs} items) to a new client**, ` +
      `${opts.reps} clients one after another (after a first one, shown apart) per round, ${opts.rounds} round(s), into a room whose seeder ` +
      "stays connected; ms from dial, median (range) over all rounds:",
    "",
    `| server | step 2 size | open | step 2 received, median (range) | synced (applied), median (range) ↓ | first client synced, each round |`,
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const n of names) {
    const all = results[n].sync;
    if (all.length === 0) continue;
    const get = (k) => all.flatMap((r) => r.runs.map((x) => x[k]));
    const range = (k) => `${f1(median(get(k)))} (${f1(Math.min(...get(k)))}–${f1(Math.max(...get(k)))})`;
    const firsts = all.map((r) => f1(r.first.synced)).join(", ");
    rows.push(`| ${n} | ${all[0].runs[0].bytes} B | ${f1(median(get("open")))} | ${range("received")} | ${range("synced")} | ${firsts} |`);
  }
  return rows;
}

function editorsTable() {
  if (!names.some((n) => results[n].editors.length)) return [];
  const rows = [
    `**(b) ${opts.editors} editors in one room**, each typing a 4-character insert at a random place ${opts.rate} times a second ` +
      `for ${opts.seconds} s (${opts.editors * opts.rate} updates/s in, ${opts.editors * opts.rate * (opts.editors - 1)} deliveries/s ` +
      `out), ${opts.apply === "all" ? "every client applying every update to its Y.Doc" : "the clients reading each update's first struct id without applying it"}, ` +
      `${opts.workers} client threads; latency from send to receipt at each other client; a row per round:`,
    "",
    "| server | updates sent | delivered / expected | deliveries/s ↑ | p50 ↓ | p99 ↓ | max | server CPU s | server RSS | converged |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const n of names) {
    for (const r of results[n].editors) {
      const l = r.latencies;
      rows.push(
        `| ${n} | ${r.sent} | ${r.received} / ${r.expected}${r.unknown ? ` (+${r.unknown} unknown)` : ""}${r.closed ? `, ${r.closed} closed` : ""} | ` +
          `${Math.round(r.received / r.seconds)} | ${f1(percentile(l, 50))} ms | ${f1(percentile(l, 99))} ms | ${f1(l[l.length - 1])} ms | ` +
          `${f1(r.serverCPU)} | ${Math.round(r.serverRSS)} MiB | ${r.converged ? "yes" : "NO"} |`,
      );
    }
    const all = results[n].editors;
    if (all.length > 1) {
      const m = (f) => median(all.map(f));
      rows.push(
        `| **${n}, median of ${all.length}** | | | **${Math.round(m((r) => r.received / r.seconds))}** | ` +
          `**${f1(m((r) => percentile(r.latencies, 50)))} ms** | **${f1(m((r) => percentile(r.latencies, 99)))} ms** | | ` +
          `${f1(m((r) => r.serverCPU))} | | |`,
      );
    }
  }
  const echoes = names.filter((n) => results[n].editors.some((r) => r.echoes > 0));
  if (echoes.length) rows.push("", `${echoes.join(", ")} also sent every update back to its sender (not counted as deliveries).`);
  return rows;
}
