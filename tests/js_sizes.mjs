// Functions over 60 lines and classes over 250 in the page's modules (issue 25), found by
// parsing each module with acorn: prints JSON [{file, line, kind, name, lines}] for
// tests/test_sizes.py, which fails naming each. Arrows with expression bodies are one
// expression, not a function a reader has to hold, so only block-bodied arrows count.
import { readFileSync, readdirSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as acorn from "acorn";

const MAX_FUNCTION = 60;
const MAX_CLASS = 250;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function modules(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modules(path);
    return entry.name.endsWith(".js") ? [path] : [];
  });
}

function nameOf(node, parent) {
  if (node.id) return node.id.name;
  if (parent && (parent.type === "MethodDefinition" || parent.type === "Property"
      || parent.type === "PropertyDefinition")) {
    return parent.key.name ?? parent.key.value ?? "(computed)";
  }
  if (parent && parent.type === "VariableDeclarator") return parent.id.name;
  return "(anonymous)";
}

function measured(node) {
  if (node.type === "ClassDeclaration" || node.type === "ClassExpression") {
    return { kind: "class", limit: MAX_CLASS };
  }
  if (node.type === "FunctionDeclaration" || node.type === "FunctionExpression"
      || (node.type === "ArrowFunctionExpression" && node.body.type === "BlockStatement")) {
    return { kind: "function", limit: MAX_FUNCTION };
  }
  return null;
}

function visit(node, parent, found, file) {
  const m = measured(node);
  if (m) {
    const lines = node.loc.end.line - node.loc.start.line + 1;
    if (lines > m.limit) {
      found.push({ file, line: node.loc.start.line, kind: m.kind, name: nameOf(node, parent), lines });
    }
  }
  for (const value of Object.values(node)) {
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) {
      if (child && typeof child.type === "string") visit(child, node, found, file);
    }
  }
}

const found = [];
for (const path of modules(join(ROOT, "static", "js")).sort()) {
  const tree = acorn.parse(readFileSync(path, "utf8"), {
    ecmaVersion: "latest", sourceType: "module", locations: true,
  });
  visit(tree, null, found, relative(ROOT, path).split("\\").join("/"));
}
console.log(JSON.stringify(found));
