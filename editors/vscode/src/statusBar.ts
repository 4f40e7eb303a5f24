/**
 * The status bar item: the product's name with running / queued counts and a spinner when busy,
 * a warning look when no provider is configured or none answers, a provider's circuit is open,
 * or the server is down; a click focuses the Agents view.
 */
import * as vscode from 'vscode';
import { type ServerState, statusBarView } from './format';
import type { AgentModel } from './model';

export class AgentMonitor implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private server: ServerState = { kind: 'starting' };
  private unconfigured = false;
  private lastKey = '';

  constructor(private readonly model: AgentModel) {
    this.item = vscode.window.createStatusBarItem('infinityMatrix.monitor', vscode.StatusBarAlignment.Left, 100);
    this.item.name = 'Infinity Matrix';
    this.item.command = 'infinity-matrix.showAgents';
    this.render();
    this.item.show();
  }

  setServerState(state: ServerState): void {
    this.server = state;
    this.render();
  }

  /** No provider is configured anywhere: the monitor says so. */
  setUnconfigured(unconfigured: boolean): void {
    this.unconfigured = unconfigured;
    this.render();
  }

  render(): void {
    const view = statusBarView(this.server, this.model.summary(), { unconfigured: this.unconfigured });
    const key = JSON.stringify(view);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.item.text = view.text;
    const md = new vscode.MarkdownString(view.tooltip);
    md.supportThemeIcons = true;
    this.item.tooltip = md;
    this.item.accessibilityInformation = { label: view.text.replace(/\$\([^)]*\)\s*/g, ''), role: 'button' };
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
