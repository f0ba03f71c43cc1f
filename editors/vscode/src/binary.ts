// Finds the review-lsp binary: the `review-lsp.path` setting, then PATH, then ~/.cargo/bin.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface Found {
  command: string;
  /** Where it came from, for the log. */
  via: "setting" | "PATH" | "cargo";
}

export interface NotFound {
  /** What was tried, for the error message. */
  reason: string;
}

const isWindows = process.platform === "win32";

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function expandHome(p: string): string {
  if (p === "~") {
    return os.homedir();
  }
  if (p.startsWith("~/") || p.startsWith("~\\")) {
    return path.join(os.homedir(), p.slice(2));
  }
  return p;
}

/** The names to look for in one directory: `review-lsp`, plus `review-lsp.exe` on Windows. */
function candidates(dir: string): string[] {
  const names = isWindows ? ["review-lsp.exe", "review-lsp"] : ["review-lsp"];
  return names.map((n) => path.join(dir, n));
}

export function findOnPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.PATH ?? env.Path ?? "";
  for (const dir of raw.split(path.delimiter)) {
    if (dir.trim() === "") {
      continue;
    }
    const hit = candidates(dir.replace(/^"(.*)"$/, "$1")).find((p) => fs.existsSync(p) && isFile(p));
    if (hit !== undefined) {
      return hit;
    }
  }
  return undefined;
}

/**
 * `setting` is `review-lsp.path` (may be empty); `workspaceFolder` resolves a relative path
 * and `${workspaceFolder}`.
 */
export function findServer(setting: string, workspaceFolder: string | undefined): Found | NotFound {
  const configured = setting.trim();
  if (configured !== "") {
    let p = expandHome(configured.replace(/\$\{workspaceFolder\}/g, workspaceFolder ?? ""));
    if (!path.isAbsolute(p) && workspaceFolder !== undefined) {
      p = path.join(workspaceFolder, p);
    }
    if (isFile(p)) {
      return { command: p, via: "setting" };
    }
    if (isWindows && isFile(`${p}.exe`)) {
      return { command: `${p}.exe`, via: "setting" };
    }
    return { reason: `review-lsp.path is set to "${configured}", but there is no file at ${p}.` };
  }
  const onPath = findOnPath();
  if (onPath !== undefined) {
    return { command: onPath, via: "PATH" };
  }
  // `cargo install` puts it here, and an editor started from a desktop often lacks it on PATH.
  const cargoHome = process.env.CARGO_HOME ?? path.join(os.homedir(), ".cargo");
  const cargo = candidates(path.join(cargoHome, "bin")).find(isFile);
  if (cargo !== undefined) {
    return { command: cargo, via: "cargo" };
  }
  return {
    reason:
      "The review-lsp binary was not found on PATH or in ~/.cargo/bin. Install it (cargo install --path . in the review-lsp repo) or set review-lsp.path.",
  };
}

export function isFound(r: Found | NotFound): r is Found {
  return "command" in r;
}
