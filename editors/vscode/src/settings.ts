// Turns the `review-lsp.*` settings the user actually set into the server's schema:
// { review: {...}, llm: {...}, agents: {...}, limits: {...}, ... }.
//
// Defaults are never sent, so the workspace's review-lsp.toml still applies to every key the
// user left alone (the server merges the editor's settings over the file, key by key).

import * as vscode from "vscode";

export const SECTION = "review-lsp";

/** Extension-only settings; everything else is forwarded verbatim. */
const CLIENT_ONLY = new Set(["path", "trace.server"]);

interface PropertySchema {
  type?: string | string[];
}

export type ServerSettings = Record<string, unknown>;

/** The forwarded keys (without the `review-lsp.` prefix), read from package.json. */
export function serverKeys(packageJSON: unknown): Map<string, PropertySchema> {
  const keys = new Map<string, PropertySchema>();
  const props = (packageJSON as { contributes?: { configuration?: { properties?: Record<string, PropertySchema> } } })
    ?.contributes?.configuration?.properties;
  for (const [full, schema] of Object.entries(props ?? {})) {
    if (!full.startsWith(`${SECTION}.`)) {
      continue;
    }
    const key = full.slice(SECTION.length + 1);
    if (!CLIENT_ONLY.has(key)) {
      keys.set(key, schema);
    }
  }
  return keys;
}

/**
 * The settings VS Code's restricted mode must not take from the workspace
 * (`capabilities.untrustedWorkspaces.restrictedConfigurations`), without the `review-lsp.`
 * prefix.
 */
export function restrictedKeys(packageJSON: unknown): Set<string> {
  const list = (
    packageJSON as { capabilities?: { untrustedWorkspaces?: { restrictedConfigurations?: string[] } } }
  )?.capabilities?.untrustedWorkspaces?.restrictedConfigurations;
  return new Set((list ?? []).filter((k) => k.startsWith(`${SECTION}.`)).map((k) => k.slice(SECTION.length + 1)));
}

/**
 * The most specific value the user set, or undefined when only the default applies. With
 * `userOnly`, values from the workspace (its .vscode settings) are skipped: `inspect` returns
 * them even in restricted mode, where `get` would not.
 */
function userValue<T>(
  inspected: ReturnType<vscode.WorkspaceConfiguration["inspect"]> & object,
  userOnly: boolean,
): T | undefined {
  const i = inspected as {
    workspaceFolderValue?: T;
    workspaceValue?: T;
    globalValue?: T;
  };
  const layers = userOnly ? [i.globalValue] : [i.workspaceFolderValue, i.workspaceValue, i.globalValue];
  for (const v of layers) {
    if (v !== undefined) {
      return v;
    }
  }
  return undefined;
}

function setPath(target: ServerSettings, dotted: string, value: unknown): void {
  const parts = dotted.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== "object" || next === null || Array.isArray(next)) {
      node[part] = {};
    }
    node = node[part] as ServerSettings;
  }
  node[parts[parts.length - 1]] = value;
}

function isNullableString(schema: PropertySchema): boolean {
  return Array.isArray(schema.type) && schema.type.includes("string") && schema.type.includes("null");
}

/** `untrusted`: the keys whose workspace values must be ignored (VS Code's restricted mode). */
export function buildSettings(
  config: vscode.WorkspaceConfiguration,
  keys: Map<string, PropertySchema>,
  untrusted: Set<string> = new Set(),
): ServerSettings {
  const out: ServerSettings = {};
  for (const [key, schema] of keys) {
    const inspected = config.inspect(key);
    if (inspected === undefined) {
      continue;
    }
    const value = userValue<unknown>(inspected, untrusted.has(key));
    if (value === undefined) {
      continue;
    }
    // A cleared text box means "the server's default", not an empty model name or URL.
    if (isNullableString(schema) && typeof value === "string" && value.trim() === "") {
      continue;
    }
    setPath(out, key, value);
  }
  return out;
}
