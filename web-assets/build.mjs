// Build the query page's editor into ../src/copkg/web/static/vendor/: one JS bundle, its CSS
// (copied from src/editor.css) and the licence of every package the bundle includes.
// Run: npm ci && npm run build
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "copkg", "web", "static", "vendor");
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "editor.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none",
  metafile: true,
  outfile: join(out, "copkg-editor.js"),
  banner: { js: "/* copkg SPARQL editor: CodeMirror 6 and friends (MIT); see copkg-editor.LICENSES.txt */" },
});
copyFileSync(join(here, "src", "editor.css"), join(out, "copkg-editor.css"));

// The packages whose code is in the bundle, each with its licence text.
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) { packages.add(m[1]); }
}
const parts = [
  "The query page's editor bundle (copkg-editor.js) includes the following packages.\n",
];
for (const name of [...packages].sort()) {
  const dir = join(here, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) { throw new Error(`${name} has no licence file: cannot ship it`); }
  parts.push(`\n==== ${name} ${meta.version} (${meta.license}) ====\n\n`);
  parts.push(readFileSync(join(dir, file), "utf8").trim() + "\n");
}
writeFileSync(join(out, "copkg-editor.LICENSES.txt"), parts.join(""));
console.log(`built ${out}/copkg-editor.js with ${packages.size} packages: ${[...packages].sort().join(", ")}`);
