/**
 * Read-only documents: streamed task results (`infinity-matrix-task:/<taskId>.md`), proposed
 * edits for the diff preview (`infinity-matrix-proposal:/<taskId>/{original,proposed}/<file>`),
 * context snapshots and the audit log (`infinity-matrix-view:/…`).
 */
import * as vscode from 'vscode';
import { renderTaskDocument } from './format';
import { isTerminal } from './lsp_ext';
import type { AgentModel } from './model';

export const TASK_SCHEME = 'infinity-matrix-task';
export const PROPOSAL_SCHEME = 'infinity-matrix-proposal';
export const VIEW_SCHEME = 'infinity-matrix-view';

export function taskUri(taskId: string): vscode.Uri {
  return vscode.Uri.from({ scheme: TASK_SCHEME, path: `/${taskId}.md` });
}

export function taskIdOfUri(uri: vscode.Uri): string | undefined {
  if (uri.scheme === TASK_SCHEME) {
    return uri.path.replace(/^\//, '').replace(/\.md$/, '') || undefined;
  }
  if (uri.scheme === PROPOSAL_SCHEME) {
    return uri.path.split('/')[1] || undefined;
  }
  return undefined;
}

/** Streams task results; updates are throttled to 10 per second per document. */
export class TaskDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly lastFire = new Map<string, number>();

  constructor(
    private readonly model: AgentModel,
    /** Asks for the task's full record when the model has no (complete) text. */
    private readonly fetch: (taskId: string) => void,
  ) {}

  provideTextDocumentContent(uri: vscode.Uri): string {
    const id = taskIdOfUri(uri) ?? '';
    const info = this.model.task(id);
    const text = this.model.text(id);
    // Unknown here (e.g. opened from the audit log after a restart), or ended without its
    // final text yet: ask the server. A running task's text arrives as it streams.
    if (!info || (isTerminal(info.state) && !text?.final)) {
      this.fetch(id);
    }
    return renderTaskDocument(id, info, text, Date.now());
  }

  /** The task's text or state changed. */
  changed(taskId: string): void {
    const key = taskId;
    if (this.pending.has(key)) return;
    const since = Date.now() - (this.lastFire.get(key) ?? 0);
    const delay = Math.max(0, 100 - since);
    this.pending.set(
      key,
      setTimeout(() => {
        this.pending.delete(key);
        this.lastFire.set(key, Date.now());
        this.emitter.fire(taskUri(taskId));
      }, delay),
    );
  }

  isOpen(taskId: string): boolean {
    const uri = taskUri(taskId).toString();
    return vscode.workspace.textDocuments.some((d) => d.uri.toString() === uri);
  }

  dispose(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.emitter.dispose();
  }
}

/** In-memory documents keyed by URI (proposals, context snapshots, audit log). */
export class MemoryDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private readonly docs = new Map<string, string>();

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? '';
  }

  set(uri: vscode.Uri, text: string): void {
    this.docs.set(uri.toString(), text);
    this.emitter.fire(uri);
  }

  deleteWhere(pred: (uri: string) => boolean): void {
    for (const k of [...this.docs.keys()]) if (pred(k)) this.docs.delete(k);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
