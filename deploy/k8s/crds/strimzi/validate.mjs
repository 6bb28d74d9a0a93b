// Validate Strimzi custom resources with the schemas of @kubernetes-models/strimzi-kafka-operator.
//
//   node validate.mjs [INSTALL_DIR] < objects.json
//
// INSTALL_DIR holds node_modules/ from `npm ci` of package.json and package-lock.json beside
// this file (default: this file's directory). Standard input: a JSON array of objects.
// Standard output: one JSON document,
//   {"package": NAME, "version": VERSION, "results": [{"errors": [{"path", "keyword", "message"}]}]}
// with one result an object, in input order; no errors: the package's validator accepts it.
// Exit status 0 whenever the objects could be read (valid or not), 2 when they could not.
//
// The package's validators check types, enums, patterns, bounds and required fields; they do
// NOT refuse unknown fields (its schemas leave additionalProperties open) and they take null
// for every field. tests/deploy/strimzi.py checks field names itself (deploy/k8s/crds/README.md).

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const PACKAGE = "@kubernetes-models/strimzi-kafka-operator";
const root = resolve(process.argv[2] ?? fileURLToPath(new URL(".", import.meta.url)));
const packageDir = join(root, "node_modules", ...PACKAGE.split("/"));
const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));

const API_VERSION = /^([a-z0-9-]+(?:\.[a-z0-9-]+)*\.strimzi\.io)\/(v[0-9a-z]+)$/;
const modules = new Map();

/** The package's model class of (apiVersion, kind), or null when it has none. */
async function modelOf(apiVersion, kind) {
  const match = API_VERSION.exec(typeof apiVersion === "string" ? apiVersion : "");
  if (!match) return null;
  if (!modules.has(apiVersion)) {
    // the package's own file (its export map names the same: "./<group>/<version>")
    const url = pathToFileURL(join(packageDir, match[1], match[2], "index.js")).href;
    modules.set(apiVersion, await import(url).catch(() => null));
  }
  const module = modules.get(apiVersion);
  if (!module) return null;
  return Object.values(module).find((m) => m?.apiVersion === apiVersion && m?.kind === kind) ?? null;
}

function describe(error) {
  let message = error.message ?? error.keyword;
  if (error.keyword === "enum" && error.params?.allowedValues) {
    message += ` ${JSON.stringify(error.params.allowedValues)}`;
  }
  return { path: error.instancePath ?? "", keyword: error.keyword ?? "", message };
}

let objects;
try {
  objects = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  process.stderr.write(`validate.mjs: standard input is not JSON: ${error.message}\n`);
  process.exit(2);
}
if (!Array.isArray(objects)) {
  process.stderr.write("validate.mjs: expected a JSON array of objects\n");
  process.exit(2);
}

const results = [];
for (const object of objects) {
  const Model = await modelOf(object?.apiVersion, object?.kind);
  if (!Model) {
    results.push({ errors: [{ path: "", keyword: "model",
      message: `${PACKAGE} ${version} has no model of ${object?.apiVersion} ${object?.kind}` }] });
    continue;
  }
  try {
    new Model(object).validate();
    results.push({ errors: [] });
  } catch (error) {
    if (!Array.isArray(error?.errors)) throw error;  // not a validation error: a bug, say so
    results.push({ errors: error.errors.map(describe) });
  }
}
process.stdout.write(`${JSON.stringify({ package: PACKAGE, version, results })}\n`);
