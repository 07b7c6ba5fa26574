/**
 * The workspace's files as the candidate edits them, and the file tree's name checks: a name is
 * checked here with the capture library's `checkPath` (what the server accepts) before the tree
 * creates or renames anything, so a refusal is a message next to the input, never an event the
 * server would refuse.
 */

import { checkPath } from "../../capture/src/validate";

/** Why a name cannot be used, in plain words, or `null` when it can. */
export function nameProblem(name: string, existing: Iterable<string>, renaming?: string): string | null {
  if (name.trim() === "") return "Enter a file name.";
  if (name !== name.trim()) return "A file name cannot start or end with a space.";
  // The server's rule first (its refusal names the problem), then the tree's own.
  const refusal = checkPath(name);
  if (refusal) {
    return refusal.code === "missing_file"
      ? "Enter a file name."
      : "Use a relative name without “..”, a leading “/” or control characters, at most 512 characters.";
  }
  if (name.endsWith("/")) return "A file name cannot end with “/”.";
  if (name.split("/").some((s) => s === "" || s === ".")) return "A file name cannot have empty or “.” folders.";
  const taken = new Set(existing);
  if (renaming !== undefined && name === renaming) return "That is already the file's name.";
  if (taken.has(name)) return "A file with that name already exists.";
  for (const other of taken) {
    if (other === renaming) continue;
    if (other.startsWith(`${name}/`)) return "That name is a folder of another file.";
    if (name.startsWith(`${other}/`)) return "That name is inside another file's name.";
  }
  return null;
}

/** Paths in tree order: folders' files together, then by name (case-insensitive). */
export function treeOrder(paths: Iterable<string>): string[] {
  return [...paths].sort((a, b) => {
    const la = a.toLowerCase();
    const lb = b.toLowerCase();
    return la < lb ? -1 : la > lb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  });
}

/** The folder part (`src/`) and the name (`app.py`) of a path, for display. */
export function splitPath(path: string): { folder: string; name: string } {
  const i = path.lastIndexOf("/");
  return i < 0 ? { folder: "", name: path } : { folder: path.slice(0, i + 1), name: path.slice(i + 1) };
}

/** The editor language for a path (by extension); `null` for plain text. */
export type Language = "python" | "javascript" | "typescript" | "sql" | "markdown" | "go" | "json" | null;

export function languageOf(path: string): Language {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase() ?? "";
  switch (ext) {
    case "py":
      return "python";
    case "js":
    case "mjs":
    case "cjs":
    case "jsx":
      return "javascript";
    case "ts":
    case "mts":
    case "tsx":
      return "typescript";
    case "json":
      return "json";
    case "sql":
      return "sql";
    case "md":
    case "markdown":
      return "markdown";
    case "go":
      return "go";
    default:
      return null;
  }
}
