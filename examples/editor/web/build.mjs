// Bundles main.js and its packages (node_modules, as package-lock.json pins
// them) into ../static/editor.js, and writes the licenses of every bundled
// package into ../static/editor.licenses.txt. With --check, writes nothing:
// it builds in memory and fails if either committed file differs from what
// the build produces.
//
//	node build.mjs           # or: npm run build
//	node build.mjs --check   # or: npm run check

import { build } from "esbuild";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const staticDir = path.join(here, "..", "static");
const outputs = {
  bundle: path.join(staticDir, "editor.js"),
  licenses: path.join(staticDir, "editor.licenses.txt"),
};
const check = process.argv.includes("--check");

const result = await build({
  absWorkingDir: here,
  entryPoints: ["main.js"],
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  charset: "utf8",
  legalComments: "none", // every bundled package's license is in editor.licenses.txt instead
  banner: { js: "/* examples/editor/web/main.js bundled by build.mjs; licenses: editor.licenses.txt */" },
  metafile: true,
  write: false,
  outfile: outputs.bundle,
  logLevel: "warning",
});

const files = {
  bundle: result.outputFiles[0].contents,
  licenses: Buffer.from(licenses(result.metafile)),
};

if (check) {
  const stale = Object.keys(files).filter(
    (k) => !existsSync(outputs[k]) || !readFileSync(outputs[k]).equals(Buffer.from(files[k])),
  );
  if (stale.length > 0) {
    console.error(`not what the build produces: ${stale.map((k) => path.relative(here, outputs[k])).join(", ")}`);
    console.error("run examples/editor/web/build.sh and commit the result");
    process.exit(1);
  }
  console.log(`up to date: ${Object.values(outputs).map((f) => path.relative(here, f)).join(", ")}`);
} else {
  for (const k of Object.keys(files)) writeFileSync(outputs[k], files[k]);
  console.log(`wrote ${outputs.bundle} (${files.bundle.length} bytes) and ${path.basename(outputs.licenses)}`);
}

/** The license text of every package with a file in the bundle, by name. */
function licenses(metafile) {
  const roots = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
    if (m) roots.add(m[1]);
  }
  const parts = [...roots]
    .map((root) => {
      const pkg = JSON.parse(readFileSync(path.join(here, root, "package.json"), "utf8"));
      const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license", "license.md"]
        .map((f) => path.join(here, root, f))
        .find((f) => existsSync(f));
      const text = file ? readFileSync(file, "utf8").trim() : `(no license file; package.json says ${pkg.license})`;
      return `${pkg.name} ${pkg.version} (${pkg.license})\n\n${text}\n`;
    })
    .sort();
  return `Packages bundled into editor.js, with their licenses.\n\n${parts.join(`\n${"-".repeat(72)}\n\n`)}`;
}
