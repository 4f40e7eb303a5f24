/**
 * The answer panel: a webview view in the Infinity Matrix container (also openable as an editor
 * tab) showing a conversation's turns as they stream, with the actions on them.
 */
import * as vscode from 'vscode';
import { isTerminal, type TaskDetail } from '../lsp_ext';
import type { AgentModel } from '../model';
import { type FromWebview, parseFromWebview, type ToWebview } from './messages';
import type { TableView } from './tables';
import { conversation, conversationTurns, type TurnRequest } from './turns';

export const ANSWER_VIEW_ID = 'infinityMatrixAnswer';

/** What the panel asks of the rest of the extension. */
export interface AnswerPanelHost {
  model: AgentModel;
  cancel(taskId: string): Promise<void>;
  retry(taskId: string, request: TurnRequest | undefined): Promise<void>;
  /** Runs a prompt: a follow-up of `parentTaskId`, or a new question on the active editor. */
  ask(text: string, parent: { taskId: string; request: TurnRequest | undefined } | undefined): Promise<void>;
  apply(taskId: string, code: string, request: TurnRequest | undefined): Promise<void>;
  log(message: string): void;
}

function nonce(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (let i = 0; i < 32; i++) out += chars.charAt(Math.floor(Math.random() * chars.length));
  return out;
}

/** Keeps at most this many requests (the tasks the model still lists are far fewer). */
const MAX_REQUESTS = 500;

export class AnswerPanel implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private tab: vscode.WebviewPanel | undefined;
  private readonly requests = new Map<string, TurnRequest>();
  private focus: string | undefined;
  /** Show Context / Show Audit: a table instead of the conversation until Back. */
  private table: TableView | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly host: AnswerPanelHost,
  ) {}

  // ---- state ---------------------------------------------------------------------------------

  /** Remembers what this window asked in a task (question, target, parent). */
  recordRequest(taskId: string, request: TurnRequest): void {
    this.requests.set(taskId, request);
    while (this.requests.size > MAX_REQUESTS) {
      const first = this.requests.keys().next().value;
      if (first === undefined) break;
      this.requests.delete(first);
    }
  }

  /** The server's record of a task: what was sent (chips), the question of a task of another window. */
  detail(d: TaskDetail): void {
    const known = this.requests.get(d.id);
    const context = (d.context ?? []).map((c) => ({ uri: c.uri, range: c.range, kind: c.kind, reason: c.reason, tokens: c.tokens }));
    const target = known?.target ?? d.target ?? undefined;
    const question = known?.question ?? (d.prompt ? d.prompt : undefined);
    if (!known && !question && !d.parentTaskId) return;
    this.recordRequest(d.id, {
      ...(known ?? {}),
      question: question ?? `${d.agent}`,
      ...(target ? { target } : {}),
      ...(context.length ? { context } : {}),
      ...(d.parentTaskId ? { parentTaskId: d.parentTaskId } : {}),
    });
    this.changed([d.id]);
  }

  request(taskId: string): TurnRequest | undefined {
    return this.requests.get(taskId);
  }

  /** Shows the conversation of `taskId` (in the view, or the tab when it is open). */
  async show(taskId: string, preserveFocus = true): Promise<void> {
    this.focus = taskId;
    this.table = undefined;
    if (this.tab) {
      this.tab.reveal(undefined, preserveFocus);
    } else {
      await vscode.commands.executeCommand(`${ANSWER_VIEW_ID}.focus`, { preserveFocus });
    }
    this.schedule(0);
  }

  /** Shows a table (Show Context, Show Audit) in the panel. */
  async showTable(table: TableView): Promise<void> {
    this.table = table;
    if (this.tab) this.tab.reveal(undefined, true);
    else await vscode.commands.executeCommand(`${ANSWER_VIEW_ID}.focus`, { preserveFocus: true });
    this.schedule(0);
  }

  /** Opens the panel as an editor tab. */
  openInEditor(): void {
    if (this.tab) {
      this.tab.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel('infinityMatrix.answer', 'Infinity Matrix: Answers', vscode.ViewColumn.Beside, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    });
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'infinity-matrix.svg');
    this.setUp(panel.webview);
    panel.onDidDispose(() => (this.tab = undefined), null, this.disposables);
    this.tab = panel;
  }

  /** The model changed for these tasks: re-render if the shown conversation has any of them. */
  changed(taskIds: Iterable<string>): void {
    if (!this.focus) return;
    const shown = new Set(conversation(this.focus, this.requests));
    for (const id of taskIds) {
      if (shown.has(id)) {
        this.schedule(50);
        return;
      }
    }
  }

  /** A task this window started: the panel follows it. */
  started(taskId: string): void {
    this.focus = taskId;
    this.table = undefined;
    this.schedule(0);
  }

  // ---- webview ---------------------------------------------------------------------------------

  resolveWebviewView(view: vscode.WebviewView): void {
    view.webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
    this.setUp(view.webview);
    view.onDidDispose(() => (this.view = undefined), null, this.disposables);
    view.onDidChangeVisibility(() => view.visible && this.schedule(0), null, this.disposables);
    this.view = view;
  }

  private setUp(webview: vscode.Webview): void {
    webview.html = this.html(webview);
    webview.onDidReceiveMessage((raw: unknown) => {
      const m = parseFromWebview(raw);
      if (m) void this.onMessage(m).catch((e) => this.host.log(`answer panel: ${String(e)}`));
    }, null, this.disposables);
  }

  private html(webview: vscode.Webview): string {
    const n = nonce();
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'panel.css'));
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `script-src 'nonce-${n}'`,
      `img-src ${webview.cspSource} data:`,
      `font-src ${webview.cspSource}`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>Infinity Matrix answers</title>
</head>
<body>
<main id="turns" aria-label="Conversation"></main>
<section id="table" hidden></section>
<p id="empty" class="empty"></p>
<form id="ask" class="ask">
<label for="question" class="visually-hidden">Question</label>
<textarea id="question" rows="3"></textarea>
<button type="submit" class="send" title="Send (Ctrl+Enter)">Send</button>
</form>
<script nonce="${n}" src="${script.toString()}"></script>
</body>
</html>`;
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.post();
    }, ms);
  }

  private post(): void {
    if (this.table) {
      const message: ToWebview = { type: 'table', table: this.table, now: Date.now() };
      void this.view?.webview.postMessage(message);
      void this.tab?.webview.postMessage(message);
      return;
    }
    const turns = conversationTurns(this.focus, this.host.model, this.requests, Date.now());
    const message: ToWebview = {
      type: 'render',
      turns,
      empty: 'Ask about the code at the cursor below, or run Explain (Ctrl+Alt+M) on a selection: answers appear here as they stream.',
      canAsk: true,
    };
    void this.view?.webview.postMessage(message);
    void this.tab?.webview.postMessage(message);
    // Elapsed times stay live while a turn runs.
    const live = turns.some((t) => !isTerminal(this.host.model.task(t.id)?.state ?? 'succeeded'));
    if (live && !this.ticker) {
      this.ticker = setInterval(() => this.schedule(0), 1000);
    } else if (!live && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private async onMessage(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.schedule(0);
        return;
      case 'back':
        this.table = undefined;
        this.schedule(0);
        return;
      case 'cancel':
        await this.host.cancel(m.taskId);
        return;
      case 'retry':
        await this.host.retry(m.taskId, this.requests.get(m.taskId));
        return;
      case 'followUp':
        await this.host.ask(
          m.text,
          m.parentTaskId ? { taskId: m.parentTaskId, request: this.requests.get(m.parentTaskId) } : undefined,
        );
        return;
      case 'copy':
        await vscode.env.clipboard.writeText(m.code);
        vscode.window.setStatusBarMessage('Infinity Matrix: code copied', 2000);
        return;
      case 'insert': {
        const editor = vscode.window.visibleTextEditors.find((e) => e === vscode.window.activeTextEditor) ?? vscode.window.visibleTextEditors[0];
        if (!editor) {
          void vscode.window.showWarningMessage('Infinity Matrix: open an editor to insert the code into.');
          return;
        }
        await editor.edit((b) => b.replace(editor.selection, m.code));
        return;
      }
      case 'apply':
        await this.host.apply(m.taskId, m.code, this.requests.get(m.taskId));
        return;
      case 'open': {
        const uri = vscode.Uri.parse(m.uri);
        const r = m.range;
        const range = new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
        await vscode.window.showTextDocument(uri, { selection: range, preview: true });
        return;
      }
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.ticker) clearInterval(this.ticker);
    this.tab?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
