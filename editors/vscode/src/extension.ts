// review-lsp for VS Code: starts `review-lsp serve`, forwards the settings the user set,
// shows the server's status in the status bar, and wraps its commands.

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
} from "vscode-languageclient/node";

import { findServer, isFound } from "./binary";
import { SECTION, ServerSettings, buildSettings, restrictedKeys, serverKeys } from "./settings";
import { renderStats } from "./stats";
import { STATUS_NOTIFICATION, StatusBar, isStatusParams } from "./status";

/** The VS Code language ids the server reviews. */
export const LANGUAGES = ["python", "javascript", "javascriptreact", "typescript", "typescriptreact", "rust", "go"];
const AGENTS = ["security", "correctness", "performance", "maintainability", "documentation"];

/** The server's `workspace/executeCommand` names. */
const SERVER = {
  scanWorkspace: "review-lsp.scanWorkspace",
  reviewFile: "review-lsp.reviewFile",
  clearCache: "review-lsp.clearCache",
  showStats: "review-lsp.showStats",
  trustWorkspace: "review-lsp.trustWorkspace",
} as const;

/** This extension's own command ids (the language client registers the server's names itself). */
const COMMAND = {
  scanWorkspace: "reviewLsp.scanWorkspace",
  reviewFile: "reviewLsp.reviewFile",
  reviewFileWithAgent: "reviewLsp.reviewFileWithAgent",
  clearCache: "reviewLsp.clearCache",
  showStats: "reviewLsp.showStats",
  restartServer: "reviewLsp.restartServer",
  showOutput: "reviewLsp.showOutput",
  trustWorkspace: "reviewLsp.trustWorkspace",
} as const;

const STATS_REFRESH_MS = 3000;

let client: LanguageClient | undefined;
let starting: Promise<void> | undefined;
let statusBar: StatusBar;
let output: vscode.OutputChannel;
let keys: ReturnType<typeof serverKeys>;
let restricted: Set<string>;
let statsPanel: vscode.WebviewPanel | undefined;
let scanCounter = 0;

/**
 * The settings for the server, and VS Code's workspace trust as `trust.workspace`: the server
 * takes that flag only from the editor, never from a workspace file. In restricted mode the
 * workspace's own values of the restricted settings are left out.
 */
function currentSettings(): ServerSettings {
  const trusted = vscode.workspace.isTrusted;
  const settings = buildSettings(vscode.workspace.getConfiguration(SECTION), keys, trusted ? new Set() : restricted);
  settings.trust = { workspace: trusted };
  return settings;
}

/** Replaces the server's editor settings with the current ones; it re-reviews open files. */
function sendSettings(): void {
  if (client?.isRunning()) {
    void client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { [SECTION]: currentSettings() },
    });
  }
}

function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function field(v: unknown, key: string): unknown {
  return typeof v === "object" && v !== null ? (v as Record<string, unknown>)[key] : undefined;
}

async function startClient(): Promise<void> {
  const found = findServer(vscode.workspace.getConfiguration(SECTION).get<string>("path", ""), workspaceFolder());
  if (!isFound(found)) {
    statusBar.stopped("binary not found");
    output.appendLine(found.reason);
    void vscode.window.showErrorMessage(`review-lsp: ${found.reason}`, "Open Settings").then((pick) => {
      if (pick === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", `${SECTION}.path`);
      }
    });
    return;
  }
  output.appendLine(`starting ${found.command} serve (found via ${found.via})`);

  // No `transport`: the client would append `--stdio`; `serve` already speaks LSP on stdio.
  const serverOptions: ServerOptions = {
    command: found.command,
    args: ["serve"],
    options: { cwd: workspaceFolder() },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: "file", language },
      { scheme: "untitled", language },
    ]),
    initializationOptions: currentSettings,
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };
  const c = new LanguageClient(SECTION, "review-lsp", serverOptions, clientOptions);
  client = c;
  c.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
    if (isStatusParams(params)) {
      statusBar.update(params);
    }
  });
  c.onDidChangeState((e) => {
    if (e.newState === State.Starting) {
      statusBar.starting();
    } else if (e.newState === State.Stopped && client === c) {
      statusBar.stopped("the server stopped");
    } else if (e.newState === State.Running) {
      statusBar.update({ state: "idle", reviewing: 0, message: "idle" });
    }
  });
  statusBar.starting();
  starting = c.start().catch((e: unknown) => {
    statusBar.stopped("failed to start");
    void vscode.window.showErrorMessage(`review-lsp failed to start: ${errorText(e)}`, "Show Log").then((pick) => {
      if (pick === "Show Log") {
        output.show();
      }
    });
  });
  await starting;
}

async function stopClient(): Promise<void> {
  const c = client;
  client = undefined;
  starting = undefined;
  if (c !== undefined) {
    try {
      await c.dispose(2000);
    } catch (e) {
      output.appendLine(`stopping the server: ${errorText(e)}`);
    }
  }
}

async function restartClient(): Promise<void> {
  await stopClient();
  await startClient();
}

/** The running client, waiting for start-up if needed; tells the user when there is none. */
async function runningClient(): Promise<LanguageClient | undefined> {
  if (starting !== undefined) {
    await starting;
  }
  if (client?.isRunning()) {
    return client;
  }
  void vscode.window.showErrorMessage("review-lsp is not running.", "Restart", "Show Log").then((pick) => {
    if (pick === "Restart") {
      void restartClient();
    } else if (pick === "Show Log") {
      output.show();
    }
  });
  return undefined;
}

async function execute(c: LanguageClient, command: string, args: unknown[] = []): Promise<unknown> {
  return c.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
}

async function scanWorkspace(): Promise<void> {
  const c = await runningClient();
  if (c === undefined) {
    return;
  }
  // A token of our own, so the scan shows as a cancellable notification (the client's own
  // handling of server-created progress shows it in the status bar, without a cancel button).
  scanCounter += 1;
  const token = `review-lsp/vscode-scan/${Date.now()}-${scanCounter}`;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "review-lsp: scanning the workspace", cancellable: true },
    async (progress, cancel) => {
      let last = 0;
      const onProgress = c.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind === "end") {
          return;
        }
        let increment: number | undefined;
        if (value.percentage !== undefined) {
          increment = Math.max(0, value.percentage - last);
          last = Math.max(last, value.percentage);
        }
        progress.report({ message: value.message, increment });
      });
      const onCancel = cancel.onCancellationRequested(() => {
        void c.sendNotification(WorkDoneProgressCancelNotification.type, { token });
      });
      try {
        const result: unknown = await c.sendRequest(ExecuteCommandRequest.type, {
          command: SERVER.scanWorkspace,
          arguments: [],
          workDoneToken: token,
        });
        const summary = field(result, "summary");
        void vscode.window.showInformationMessage(
          `review-lsp scan: ${typeof summary === "string" ? summary : "done"}`,
        );
      } catch (e) {
        void vscode.window.showErrorMessage(`review-lsp scan failed: ${errorText(e)}`);
      } finally {
        onProgress.dispose();
        onCancel.dispose();
      }
    },
  );
}

async function reviewFile(withAgent: boolean): Promise<void> {
  const doc = vscode.window.activeTextEditor?.document;
  if (doc === undefined || !LANGUAGES.includes(doc.languageId)) {
    void vscode.window.showWarningMessage(
      "review-lsp: open a Python, JavaScript, TypeScript, Rust or Go file to review it.",
    );
    return;
  }
  let agent: string | undefined;
  if (withAgent) {
    agent = await vscode.window.showQuickPick(AGENTS, { placeHolder: "Review with which agent?" });
    if (agent === undefined) {
      return;
    }
  }
  const c = await runningClient();
  if (c === undefined) {
    return;
  }
  const uri = c.code2ProtocolConverter.asUri(doc.uri);
  try {
    const result = await execute(c, SERVER.reviewFile, [agent === undefined ? uri : { uri, agent }]);
    if (field(result, "superseded") === true) {
      vscode.window.setStatusBarMessage("review-lsp: superseded by a newer edit", 4000);
      return;
    }
    const n = field(result, "findings");
    const cached = field(result, "cache_hit") === true ? " (cached)" : "";
    const what = agent === undefined ? "" : ` by ${agent}`;
    vscode.window.setStatusBarMessage(
      `review-lsp: ${typeof n === "number" ? n : "?"} finding${n === 1 ? "" : "s"}${what}${cached}`,
      5000,
    );
  } catch (e) {
    void vscode.window.showErrorMessage(`review-lsp: reviewing the file failed: ${errorText(e)}`);
  }
}

async function clearCache(): Promise<void> {
  const c = await runningClient();
  if (c === undefined) {
    return;
  }
  try {
    const result = await execute(c, SERVER.clearCache);
    if (field(result, "cleared") === true) {
      void vscode.window.showInformationMessage("review-lsp: cache cleared.");
    } else {
      const reason = field(result, "reason");
      void vscode.window.showWarningMessage(
        `review-lsp: cache not cleared${typeof reason === "string" ? ` (${reason})` : ""}.`,
      );
    }
  } catch (e) {
    void vscode.window.showErrorMessage(`review-lsp: clearing the cache failed: ${errorText(e)}`);
  }
}

async function refreshStats(panel: vscode.WebviewPanel): Promise<void> {
  const c = client;
  if (c === undefined || !c.isRunning()) {
    panel.webview.html = renderStats({ status: { state: "stopped", message: "review-lsp is not running" } }, new Date());
    return;
  }
  try {
    const stats = await execute(c, SERVER.showStats);
    if (statsPanel === panel) {
      panel.webview.html = renderStats(stats, new Date());
    }
  } catch (e) {
    output.appendLine(`showStats failed: ${errorText(e)}`);
  }
}

async function showStats(): Promise<void> {
  if (statsPanel !== undefined) {
    statsPanel.reveal(undefined, true);
    await refreshStats(statsPanel);
    return;
  }
  const c = await runningClient();
  if (c === undefined) {
    return;
  }
  const panel = vscode.window.createWebviewPanel(
    "reviewLsp.stats",
    "review-lsp stats",
    { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
    { enableScripts: false, retainContextWhenHidden: false },
  );
  statsPanel = panel;
  const timer = setInterval(() => {
    if (panel.visible) {
      void refreshStats(panel);
    }
  }, STATS_REFRESH_MS);
  panel.onDidDispose(() => {
    clearInterval(timer);
    if (statsPanel === panel) {
      statsPanel = undefined;
    }
  });
  await refreshStats(panel);
}

/** Trusts one folder's review-lsp.toml in the server's trust store (asks which, if several). */
async function trustWorkspace(): Promise<void> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const folder =
    folders.length === 1
      ? folders[0]
      : await vscode.window.showWorkspaceFolderPick({ placeHolder: "Trust which folder's review-lsp.toml?" });
  if (folder === undefined) {
    return;
  }
  const c = await runningClient();
  if (c === undefined) {
    return;
  }
  try {
    await execute(c, SERVER.trustWorkspace, [c.code2ProtocolConverter.asUri(folder.uri)]);
    void vscode.window.showInformationMessage(`review-lsp: trusted ${folder.name}'s review-lsp.toml as it is now.`);
  } catch (e) {
    void vscode.window.showErrorMessage(`review-lsp: trusting ${folder.name} failed: ${errorText(e)}`);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  keys = serverKeys(context.extension.packageJSON);
  restricted = restrictedKeys(context.extension.packageJSON);
  output = vscode.window.createOutputChannel("review-lsp");
  statusBar = new StatusBar(COMMAND.showStats, COMMAND.restartServer);
  context.subscriptions.push(
    output,
    statusBar,
    vscode.commands.registerCommand(COMMAND.scanWorkspace, scanWorkspace),
    vscode.commands.registerCommand(COMMAND.reviewFile, () => reviewFile(false)),
    vscode.commands.registerCommand(COMMAND.reviewFileWithAgent, () => reviewFile(true)),
    vscode.commands.registerCommand(COMMAND.clearCache, clearCache),
    vscode.commands.registerCommand(COMMAND.showStats, showStats),
    vscode.commands.registerCommand(COMMAND.restartServer, restartClient),
    vscode.commands.registerCommand(COMMAND.showOutput, () => output.show()),
    vscode.commands.registerCommand(COMMAND.trustWorkspace, trustWorkspace),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) {
        return;
      }
      if (e.affectsConfiguration(`${SECTION}.path`)) {
        void restartClient();
        return;
      }
      sendSettings();
    }),
    // Trusting the window lets the workspace's settings through: tell the server at once.
    vscode.workspace.onDidGrantWorkspaceTrust(sendSettings),
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
