// Helpers of the reverse-proxy test: a certificate made for the test, and
// nginx running the site config of docs/deployment/nginx.conf.
//
// The doc's file is used as it is, but for the values on four of its lines
// marked "(*)": the listen address (a free port on 127.0.0.1), the two
// certificate paths (the test's) and the upstream address (the Go server the
// test started). Each is replaced as an exact string that must occur once, on
// a marked line, so an edit to the doc's file that the test would not follow
// fails here by name. The wrapper written around it holds only what a test
// run needs at nginx's top level: its pid file, logs and temp paths in a
// temporary directory, one foreground process, and an http block that
// includes the site file.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { repoRoot, withTimeout } from "../lib/harness.mjs";

/** The site config the doc shows and the test runs. */
export const siteConfigPath = path.join(repoRoot, "docs", "deployment", "nginx.conf");

/** The public name in the doc's config (server_name), which the test's certificate is for. */
export const publicHost = "chat.example.com";

/** The strings of the doc's file the test replaces, each on a line marked (*). */
const placeholders = {
  listen: "listen 443 ssl;",
  cert: "/etc/ssl/chat.example.com/fullchain.pem",
  key: "/etc/ssl/chat.example.com/privkey.pem",
  upstream: "server 127.0.0.1:1999;",
};

/**
 * Returns the doc's site config with the test's values: listen (host:port),
 * cert and key (paths), upstream (host:port). edit, if given, changes the
 * result further (for a test that shows what a mistake does).
 */
export function siteConfig({ listen, cert, key, upstream }, edit = (s) => s) {
  const text = readFileSync(siteConfigPath, "utf8");
  const values = { listen: `listen ${listen} ssl;`, cert, key, upstream: `server ${upstream};` };
  let out = text;
  for (const [name, from] of Object.entries(placeholders)) {
    const lines = text.split("\n").filter((l) => l.includes(from));
    if (lines.length !== 1 || !/#\s*\(\*\)/.test(lines[0])) {
      throw new Error(
        `${siteConfigPath}: expected ${JSON.stringify(from)} exactly once, on a line marked (*), ` +
          `found it on ${lines.length} line(s): the test replaces it with its own ${name}; update interop/proxy/nginx.mjs with the file`,
      );
    }
    out = out.replace(from, () => values[name]);
  }
  return edit(out);
}

/**
 * Finds nginx (NGINX, /usr/sbin/nginx, then PATH). When it is missing and
 * this process may install packages (root, apt-get present), installs
 * Debian's package, as .ci/interop.sh does. Returns its path, or null.
 */
export function findNginx() {
  const find = () => {
    for (const p of [process.env.NGINX, "/usr/sbin/nginx", "/usr/local/sbin/nginx"]) {
      if (p && existsSync(p)) return p;
    }
    const r = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" });
    return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
  };
  return find() ?? (aptInstall("nginx") ? find() : null);
}

/** Installs a Debian package when running as root with apt-get; true if it worked. */
function aptInstall(pkg) {
  if (process.getuid?.() !== 0 || spawnSync("sh", ["-c", "command -v apt-get"]).status !== 0) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", pkg], { env, stdio: "ignore", timeout: 300_000 })
      .status === 0;
  if (install()) return true;
  spawnSync("apt-get", ["update", "-qq"], { env, stdio: "ignore", timeout: 300_000 });
  return install();
}

/**
 * Makes a self-signed certificate for name in dir with openssl. Returns the
 * paths of the certificate and key, and the certificate's PEM text (what a
 * client is given to trust).
 */
export function makeCertificate(dir, name) {
  if (spawnSync("sh", ["-c", "command -v openssl"]).status !== 0 && !aptInstall("openssl")) {
    throw new Error("openssl not found (apt-get install openssl): the test makes its certificate with it");
  }
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const r = spawnSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-keyout", key, "-out", cert,
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`openssl req failed (${r.status ?? r.error}):\n${r.stderr}`);
  return { cert, key, pem: readFileSync(cert, "utf8") };
}

/** A port free on 127.0.0.1 now (the OS's choice). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set(); // nginx processes to kill if a failed test leaves one behind
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL"); // one process (master_process off): nothing is orphaned
});

/** nginx serving the doc's site config on a free port of 127.0.0.1, in the foreground. */
export class Nginx {
  /**
   * Starts nginx (binary) in dir (its prefix: config, pid, logs, temp
   * files) in front of upstream (host:port), with the certificate
   * {cert, key}. edit changes the site config (see siteConfig).
   */
  static async start({ binary, dir, upstream, cert, key, edit }) {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const n = new Nginx(binary, dir);
      try {
        await n.run(siteConfig({ listen: `127.0.0.1:${port}`, cert, key, upstream }, edit));
        n.port = port;
        return n;
      } catch (err) {
        // Another process may have taken the port between freePort and nginx's bind.
        if (attempt < 3 && /Address already in use/.test(n.log)) continue;
        throw err;
      }
    }
  }

  constructor(binary, dir) {
    this.binary = binary;
    this.dir = dir;
    this.log = "";
    this.proc = null;
  }

  async run(site) {
    const dir = this.dir;
    mkdirSync(path.join(dir, "temp"), { recursive: true });
    writeFileSync(path.join(dir, "site.conf"), site);
    const wrapper = path.join(dir, "nginx.conf");
    writeFileSync(
      wrapper,
      [
        "# Written by interop/proxy/nginx.mjs for one test run: the top level only;",
        "# site.conf is docs/deployment/nginx.conf with the test's listen address,",
        "# certificate and upstream.",
        "master_process off;",
        "daemon off;",
        `pid ${path.join(dir, "nginx.pid")};`,
        "error_log stderr notice;",
        "events { worker_connections 512; }",
        "http {",
        `    access_log ${path.join(dir, "access.log")};`,
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(
          (t) => `    ${t}_temp_path ${path.join(dir, "temp", t)};`,
        ),
        "    include site.conf;",
        "}",
        "",
      ].join("\n"),
    );
    const proc = spawn(this.binary, ["-p", dir + "/", "-e", "stderr", "-c", wrapper], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    running.add(proc);
    this.exited = new Promise((resolve) =>
      proc.once("exit", (code, signal) => {
        running.delete(proc);
        resolve({ code, signal });
      }),
    );
    proc.stdout.setEncoding("utf8").on("data", (s) => (this.log += s));
    proc.stderr.setEncoding("utf8").on("data", (s) => (this.log += s));
    // nginx logs its version (notice level) once its listening sockets are
    // open, after reading and checking every file of the config.
    await withTimeout(
      new Promise((resolve, reject) => {
        proc.stderr.on("data", () => /\] \d+#\d+: nginx\/\d/.test(this.log) && resolve());
        proc.once("exit", (code) => reject(new Error(`nginx exited with ${code}`)));
      }),
      10_000,
      "nginx to start",
    ).catch((err) => {
      throw new Error(`${err.message}; nginx's log:\n${this.log}`);
    });
  }

  /** Stops nginx (SIGTERM) and waits for it to exit. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    try {
      await withTimeout(this.exited, 5000, "nginx to exit on SIGTERM");
    } catch (err) {
      this.proc.kill("SIGKILL");
      throw err;
    }
  }
}
