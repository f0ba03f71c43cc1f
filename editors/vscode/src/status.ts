// The status bar item, driven by the server's `review-lsp/status` notification.

import * as vscode from "vscode";

export interface StatusParams {
  state: string;
  reviewing: number;
  message: string;
}

export const STATUS_NOTIFICATION = "review-lsp/status";

export function isStatusParams(v: unknown): v is StatusParams {
  const p = v as Partial<StatusParams> | null;
  return typeof p === "object" && p !== null && typeof p.state === "string";
}

/** Text and background for one state. */
export function presentation(p: StatusParams): { text: string; background?: string } {
  switch (p.state) {
    case "idle":
      return { text: "$(check) review-lsp" };
    case "reviewing":
      return { text: `$(sync~spin) reviewing ${p.reviewing}` };
    case "rate_limited":
      return { text: "$(watch) rate-limited", background: "statusBarItem.warningBackground" };
    case "breaker_open":
      return { text: "$(error) breaker open", background: "statusBarItem.errorBackground" };
    case "over_budget":
      return { text: "$(credit-card) over budget", background: "statusBarItem.warningBackground" };
    default:
      return { text: `$(info) review-lsp: ${p.state}` };
  }
}

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor(
    private readonly showStatsCommand: string,
    private readonly restartCommand: string,
  ) {
    this.item = vscode.window.createStatusBarItem("reviewLsp.status", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "review-lsp";
    this.item.command = showStatsCommand;
    this.starting();
    this.item.show();
  }

  update(p: StatusParams): void {
    const { text, background } = presentation(p);
    this.item.command = this.showStatsCommand;
    this.item.text = text;
    this.item.tooltip = p.message !== "" ? `review-lsp: ${p.message}\nClick for stats` : "review-lsp: click for stats";
    this.item.backgroundColor = background !== undefined ? new vscode.ThemeColor(background) : undefined;
  }

  starting(): void {
    this.item.text = "$(loading~spin) review-lsp";
    this.item.tooltip = "review-lsp: starting";
    this.item.backgroundColor = undefined;
  }

  stopped(reason: string): void {
    this.item.text = "$(circle-slash) review-lsp";
    this.item.tooltip = `review-lsp: ${reason}\nClick to restart`;
    this.item.command = this.restartCommand;
    this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
  }

  dispose(): void {
    this.item.dispose();
  }
}
