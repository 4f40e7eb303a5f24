/**
 * The extension's commands. Server commands (startAgent, executePrompt, stopAgent, cancelTask,
 * approve, proposeEdit) are sent as workspace/executeCommand with the arguments object the server expects
 * (see server/src/lsp/ext.rs); each answers `{taskId}`.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';
import type { ServerManager } from './client';
import { PROPOSAL_SCHEME, type MemoryDocuments, taskIdOfUri, taskUri, VIEW_SCHEME } from './documents';
import { basename, linesChangedLabel, renderAuditDocument, renderContextDocument, shortTaskId, stateLabel, taskStateLabel } from './format';
import {
  type AgentDef,
  type AgentsResult,
  type AuditResult,
  type CommandResult,
  type ContextParams,
  type ContextResult,
  type Diagnostic as LspDiagnostic,
  type ProposeEditArgs,
  isTerminal,
  Methods,
  type Range as LspRange,
  type ServerCommand,
  ServerCommands,
  type TaskDetail,
  type TaskInfo,
  type TestProviderResult,
} from './lsp_ext';
import type { AgentModel } from './model';
import type { AnswerPanel } from './panel/answerPanel';
import { auditTable, contextTable } from './panel/tables';
import { taskLabel, type TurnRequest } from './panel/turns';
import { isProviderName, PROVIDER_CHOICES, providerEntry, withProvider } from './providerSetup';
import { isSecretName, type Secrets } from './secrets';
import { applyEdit } from './text';
import { AgentNode, TaskNode } from './tree';

export interface CommandHost {
  server: ServerManager;
  model: AgentModel;
  memDocs: MemoryDocuments;
  secrets: Secrets;
  panel: AnswerPanel;
  /** Tasks started from this window (their results open, their edits are previewed). */
  ownTasks: Set<string>;
  agents(refresh?: boolean): Promise<AgentsResult | undefined>;
  fetchTask(taskId: string): Promise<TaskDetail | undefined>;
  log(message: string): void;
  focusAgents(): Promise<void>;
  useBuiltinChain(): Promise<void>;
}

/** Our own diagnostics (published by review agents) are not fed back to the server. */
const OWN_DIAGNOSTIC_SOURCE = 'infinity-matrix';

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Extracts a task id from the forms commands receive: a tree node, a URI, an object, a string. */
export function taskIdOf(arg: unknown): string | undefined {
  if (arg instanceof TaskNode) return arg.id;
  if (arg instanceof vscode.Uri) return taskIdOfUri(arg);
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object') {
    const o = arg as Record<string, unknown>;
    if (typeof o.taskId === 'string') return o.taskId;
    if (typeof o.id === 'string') return o.id;
  }
  return undefined;
}

function agentOf(arg: unknown): string | undefined {
  if (arg instanceof AgentNode) return arg.name;
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object' && typeof (arg as Record<string, unknown>).agent === 'string') {
    return (arg as Record<string, string>).agent;
  }
  return undefined;
}

export class Commands {
  constructor(private readonly h: CommandHost) {}

  register(context: vscode.ExtensionContext): void {
    const reg = (id: string, fn: (arg?: unknown) => unknown) =>
      context.subscriptions.push(
        vscode.commands.registerCommand(id, async (arg?: unknown) => {
          try {
            return await fn(arg);
          } catch (e) {
            this.h.log(`${id} failed: ${errorText(e)}`);
            void vscode.window.showErrorMessage(`Infinity Matrix: ${errorText(e)}`);
            return undefined;
          }
        }),
      );
    reg(ServerCommands.executePrompt, (arg) => this.executePrompt(arg));
    reg(ServerCommands.startAgent, (arg) => this.startAgent(arg));
    reg(ServerCommands.stopAgent, (arg) => this.stopAgent(arg));
    reg(ServerCommands.cancelTask, (arg) => this.cancelTask(arg));
    reg(ServerCommands.approve, (arg) => this.approve(arg, true));
    reg(ServerCommands.proposeEdit, (arg) => {
      const a = arg && typeof arg === 'object' ? (arg as Record<string, unknown>) : {};
      if (typeof a.taskId !== 'string' || typeof a.newText !== 'string') {
        throw new Error('proposeEdit needs {taskId, newText}');
      }
      return this.applyCode(a.taskId, a.newText, undefined);
    });
    reg('infinity-matrix.reject', (arg) => this.approve(arg, false));
    // The diff view's title bar: labelled Apply / Reject (the diff is the approval prompt).
    reg('infinity-matrix.applyInDiff', (arg) => this.approve(arg, true));
    reg('infinity-matrix.rejectInDiff', (arg) => this.approve(arg, false));
    reg('infinity-matrix.previewEdit', (arg) => this.previewEdit(arg));
    reg('infinity-matrix.openResult', (arg) => this.openResult(arg));
    reg('infinity-matrix.openResultDocument', (arg) => this.openResultDocument(arg));
    reg('infinity-matrix.showContext', () => this.showContext());
    reg('infinity-matrix.showAudit', () => this.showAudit());
    reg('infinity-matrix.setApiKey', (arg) => this.setApiKey(arg));
    reg('infinity-matrix.removeApiKey', () => this.removeApiKey());
    reg('infinity-matrix.restartServer', () => this.restartServer());
    reg('infinity-matrix.showLog', () => this.h.server.output.show(true));
    reg('infinity-matrix.showAgents', () => this.h.focusAgents());
    reg('infinity-matrix.openSettings', () =>
      vscode.commands.executeCommand('workbench.action.openSettings', '@ext:InfinityXOne.infinity-matrix-agent'),
    );
    reg('infinity-matrix.useBuiltinChain', () => this.h.useBuiltinChain());
    reg('infinity-matrix.openAnswerPanel', () => this.h.panel.openInEditor());
    reg('infinity-matrix.configureProvider', () => this.configureProvider());
    reg('infinity-matrix.testConnection', (arg) => this.testConnection(arg));
  }

  /** Restart Server: progress while it restarts, then a confirmation (or what went wrong). */
  private async restartServer(): Promise<void> {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Infinity Matrix: restarting the server…' },
      () => this.h.server.restart(),
    );
    const s = this.h.server.state;
    if (s.kind === 'running') {
      void vscode.window.showInformationMessage(`Infinity Matrix: server restarted${s.version ? ` (${s.version})` : ''}.`);
    } else {
      void vscode.window.showWarningMessage('Infinity Matrix: the server did not start again; see the log.', 'Show Log').then((c) => {
        if (c) this.h.server.output.show(true);
      });
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  private client(): LanguageClient {
    const c = this.h.server.running;
    if (!c) {
      const s = this.h.server.state;
      const why =
        s.kind === 'missing'
          ? s.message
          : s.kind === 'restarting'
            ? `the server is restarting (in ${s.inSeconds} s)`
            : s.kind === 'starting'
              ? 'the server is still starting'
              : 'the server is not running';
      throw new Error(`${why}. Run "Infinity Matrix: Restart Server" or see "Infinity Matrix: Show Server Log".`);
    }
    return c;
  }

  private async runServerCommand(command: ServerCommand, arg: object): Promise<CommandResult> {
    const client = this.client();
    const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] });
    const taskId =
      result && typeof result === 'object' && typeof (result as Record<string, unknown>).taskId === 'string'
        ? (result as { taskId: string }).taskId
        : null;
    return { taskId };
  }

  /** Where the editor's cursor or selection is, in LSP terms, with the diagnostics there. */
  private async editorTarget(
    editor: vscode.TextEditor,
  ): Promise<{ textDocument: { uri: string }; range?: LspRange; position?: LspRange['start']; diagnostics: LspDiagnostic[] }> {
    const client = this.client();
    const c2p = client.code2ProtocolConverter;
    const sel = editor.selection;
    const doc = editor.document;
    const area = sel.isEmpty ? doc.lineAt(sel.active.line).range : new vscode.Range(sel.start, sel.end);
    const diags = vscode.languages
      .getDiagnostics(doc.uri)
      .filter((d) => d.source !== OWN_DIAGNOSTIC_SOURCE && d.range.intersection(area) !== undefined);
    const diagnostics = (await c2p.asDiagnostics(diags)) as unknown as LspDiagnostic[];
    const textDocument = { uri: c2p.asUri(doc.uri) };
    return sel.isEmpty
      ? { textDocument, position: c2p.asPosition(sel.active), diagnostics }
      : { textDocument, range: c2p.asRange(sel), diagnostics };
  }

  private async outputOf(agent: string | undefined): Promise<AgentDef['output'] | undefined> {
    const defs = await this.h.agents();
    const name = agent ?? defs?.defaultAgent;
    return defs?.agents.find((a) => a.name === name)?.output ?? this.h.model.agent(name ?? '')?.output;
  }

  /**
   * Bookkeeping after the server accepted a task: the answer panel follows it (or its result
   * document opens, with `infinityMatrix.ui.answerView` = `document`) as it streams.
   */
  private async started(taskId: string | null, agent: string | undefined, request?: TurnRequest): Promise<void> {
    if (!taskId) {
      if (agent) vscode.window.setStatusBarMessage(`$(eye) Infinity Matrix: agent ${agent} enabled`, 4000);
      return;
    }
    this.h.ownTasks.add(taskId);
    if (request) this.h.panel.recordRequest(taskId, request);
    // What was sent (the context items, for the panel's chips) is in the server's record.
    void this.h.fetchTask(taskId);
    const output = await this.outputOf(agent);
    const ui = vscode.workspace.getConfiguration('infinityMatrix.ui');
    vscode.window.setStatusBarMessage(`$(sync~spin) Infinity Matrix: ${agent ?? 'agent'} ${shortTaskId(taskId)} started`, 4000);
    if (output === 'edit' || output === 'diagnostics') {
      // The streamed text shows in the panel; a progress notification with Cancel until the
      // edit is proposed (or the findings are in).
      this.h.panel.started(taskId);
      void this.progressUntilProposed(taskId, output);
      return;
    }
    if (!ui.get<boolean>('openResults', true)) return;
    if (ui.get<string>('answerView', 'panel') === 'document') {
      await this.showTask(taskId, true);
    } else {
      this.h.panel.started(taskId);
      await this.h.panel.show(taskId, true);
    }
  }

  private progressUntilProposed(taskId: string, output: 'edit' | 'diagnostics'): Thenable<void> {
    const label = this.h.model.task(taskId) ? taskLabel(this.h.model.task(taskId)!) : shortTaskId(taskId);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Infinity Matrix: ${label}`, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          token.onCancellationRequested(() => void this.cancelTask(taskId).catch(() => undefined));
          let shown = 0;
          const tick = setInterval(() => {
            const t = this.h.model.task(taskId);
            if (!t || isTerminal(t.state) || t.state === 'awaiting_approval') {
              clearInterval(tick);
              resolve();
              return;
            }
            const chars = this.h.model.text(taskId)?.text.length ?? 0;
            const what = output === 'edit' ? 'writing the edit' : 'reviewing';
            const message = t.state === 'queued' ? 'queued' : chars > 0 ? `${what}: ${chars} characters so far` : `${what}…`;
            if (chars !== shown || t.state === 'queued') progress.report({ message });
            shown = chars;
          }, 250);
        }),
    );
  }

  /** What a task was asked: the question and the code it is about (for the answer panel). */
  private request(
    question: string,
    args: { textDocument: { uri: string }; range?: LspRange; position?: LspRange['start'] },
    resend: TurnRequest['resend'],
    parentTaskId?: string,
  ): TurnRequest {
    const range = args.range ?? (args.position ? { start: { line: args.position.line, character: 0 }, end: { line: args.position.line + 1, character: 0 } } : undefined);
    return {
      question,
      ...(range ? { target: { uri: args.textDocument.uri, range } } : {}),
      ...(resend ? { resend } : {}),
      ...(parentTaskId ? { parentTaskId } : {}),
    };
  }

  // ---- the answer panel's actions ------------------------------------------------------------

  /** Runs a prompt from the panel: a follow-up of `parent` (same code), or on the active editor. */
  async ask(text: string, parent: { taskId: string; request: TurnRequest | undefined } | undefined): Promise<void> {
    const base = parent?.request?.resend;
    if (parent && base) {
      const args = { ...base.args, prompt: text, parentTaskId: parent.taskId };
      const agent = typeof base.args.agent === 'string' ? base.args.agent : undefined;
      const { taskId } = await this.runServerCommand(ServerCommands.executePrompt, args);
      const req = this.request(text, base.args as Parameters<Commands['request']>[1], { command: ServerCommands.executePrompt, args }, parent.taskId);
      await this.started(taskId, agent ?? (await this.h.agents())?.defaultAgent, req);
      return;
    }
    await this.executePrompt({ prompt: text });
  }

  /** Runs a task's request again (same command, same arguments). */
  async retry(taskId: string, request: TurnRequest | undefined): Promise<void> {
    const resend = request?.resend;
    if (!resend) {
      void vscode.window.showInformationMessage(`Infinity Matrix: ${shortTaskId(taskId)} was not started from this window; run it again from the editor.`);
      return;
    }
    const { taskId: id } = await this.runServerCommand(resend.command as ServerCommand, resend.args);
    const agent = typeof resend.args.agent === 'string' ? resend.args.agent : (await this.h.agents())?.defaultAgent;
    await this.started(id, agent, { ...request, resend });
  }

  /**
   * *Apply as edit*: proposes a code block of an answer as the replacement of the code the
   * question was about. The server puts it through the agent's approval policy, as an edit
   * agent's reply: applied, or shown as a diff to approve (the one approval prompt), or refused.
   */
  async applyCode(taskId: string, code: string, _request: TurnRequest | undefined): Promise<void> {
    const args: ProposeEditArgs = { taskId, newText: code };
    const { taskId: id } = await this.runServerCommand(ServerCommands.proposeEdit, args);
    if (!id) return;
    this.h.ownTasks.add(id);
    void this.h.fetchTask(id);
    const label = (t: string) => {
      const info = this.h.model.task(t);
      return info ? taskLabel(info) : shortTaskId(t);
    };
    vscode.window.setStatusBarMessage(
      `$(sync~spin) Infinity Matrix: the code block of ${label(taskId)} proposed as an edit (${label(id)})`,
      4000,
    );
  }

  private async showTask(taskId: string, beside: boolean): Promise<void> {
    const doc = await vscode.workspace.openTextDocument(taskUri(taskId));
    await vscode.window.showTextDocument(doc, {
      viewColumn: beside ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active,
      preview: true,
      preserveFocus: beside,
    });
  }

  private async pickTask(filter: (t: TaskInfo) => boolean, placeHolder: string): Promise<string | undefined> {
    const tasks = this.h.model.tasks.filter(filter);
    if (tasks.length === 0) {
      void vscode.window.showInformationMessage('Infinity Matrix: no such task right now.');
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      tasks.map((t) => ({
        label: `${t.agent} ${shortTaskId(t.id)}`,
        description: `${taskStateLabel(t)}${t.uri ? ` · ${basename(t.uri)}` : ''}`,
        id: t.id,
      })),
      { placeHolder },
    );
    return pick?.id;
  }

  // ---- server commands --------------------------------------------------------------------------

  /** Prompt → the default agent (or `@agent prompt`) on the selection or cursor. */
  async executePrompt(arg?: unknown): Promise<string | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !['file', 'untitled'].includes(editor.document.uri.scheme)) {
      void vscode.window.showWarningMessage('Infinity Matrix: open a file and place the cursor (or select code) first.');
      return undefined;
    }
    const given = arg && typeof arg === 'object' ? (arg as Record<string, unknown>) : {};
    let prompt = typeof given.prompt === 'string' ? given.prompt : undefined;
    let agent = typeof given.agent === 'string' ? given.agent : undefined;
    if (prompt === undefined) {
      const defs = await this.h.agents();
      prompt = await vscode.window.showInputBox({
        title: 'Infinity Matrix: Execute Prompt',
        prompt: `Ask about the ${editor.selection.isEmpty ? 'code at the cursor' : 'selection'}. Start with @agent to pick an agent (default: ${defs?.defaultAgent ?? 'explain'}).`,
        placeHolder: 'e.g. What does this function do?',
        ignoreFocusOut: true,
      });
      if (prompt === undefined) return undefined;
    }
    const m = /^@([\w.-]+)\s*([\s\S]*)$/.exec(prompt.trim());
    if (m && !agent) {
      agent = m[1];
      prompt = m[2] ?? '';
    }
    const target = await this.editorTarget(editor);
    const args = {
      prompt,
      ...(agent ? { agent } : {}),
      ...target,
    };
    const { taskId } = await this.runServerCommand(ServerCommands.executePrompt, args);
    const question = prompt || `${agent ?? 'default agent'} on the ${editor.selection.isEmpty ? 'code at the cursor' : 'selection'}`;
    await this.started(taskId, agent ?? (await this.h.agents())?.defaultAgent, this.request(question, target, { command: ServerCommands.executePrompt, args }));
    return taskId ?? undefined;
  }

  /**
   * With arguments (a code action of the server, or another extension): passed to the server
   * as they are. Without: a quick pick of the server's agents, run on the active editor.
   */
  async startAgent(arg?: unknown): Promise<string | undefined> {
    if (arg && typeof arg === 'object' && !(arg instanceof AgentNode) && typeof (arg as Record<string, unknown>).agent === 'string') {
      const a = arg as { agent: string };
      const { taskId } = await this.runServerCommand(ServerCommands.startAgent, a);
      await this.started(taskId, a.agent);
      return taskId ?? undefined;
    }
    let agent = agentOf(arg);
    if (!agent) {
      const defs = await this.h.agents(true);
      if (!defs || defs.agents.length === 0) {
        void vscode.window.showWarningMessage('Infinity Matrix: the server has no agents.');
        return undefined;
      }
      const pick = await vscode.window.showQuickPick(
        defs.agents.map((d) => ({
          label: d.name,
          description: d.description,
          detail: [
            `output: ${d.output}`,
            d.output === 'edit' ? `approval: ${d.approval}` : '',
            `providers: ${d.providers.join(' → ') || 'default chain'}`,
            `triggers: ${d.triggers.join(', ')}`,
          ]
            .filter(Boolean)
            .join(' · '),
          name: d.name,
        })),
        { title: 'Infinity Matrix: Start Agent', placeHolder: 'Pick an agent to run on the selection or cursor', matchOnDescription: true },
      );
      if (!pick) return undefined;
      agent = pick.name;
    }
    const editor = vscode.window.activeTextEditor;
    const onDoc = editor && ['file', 'untitled'].includes(editor.document.uri.scheme);
    const target = onDoc ? await this.editorTarget(editor) : undefined;
    const args = target ? { agent, ...target } : { agent };
    const { taskId } = await this.runServerCommand(ServerCommands.startAgent, args);
    const question = `${agent} on the ${editor && !editor.selection.isEmpty ? 'selection' : 'code at the cursor'}`;
    await this.started(
      taskId,
      agent,
      target ? this.request(question, target, { command: ServerCommands.startAgent, args }) : { question },
    );
    return taskId ?? undefined;
  }

  async stopAgent(arg?: unknown): Promise<void> {
    let agent = agentOf(arg);
    if (!agent) {
      const busy = this.h.model.agents.filter((a) => a.running > 0 || a.queued > 0 || a.enabled);
      const list = busy.length ? busy : this.h.model.agents;
      const pick = await vscode.window.showQuickPick(
        list.map((a) => ({ label: a.name, description: a.description, detail: `${a.state} · ${a.running} running · ${a.queued} queued` })),
        { title: 'Infinity Matrix: Stop Agent', placeHolder: 'Cancels its tasks and disables its background triggers' },
      );
      if (!pick) return;
      agent = pick.label;
    }
    await this.runServerCommand(ServerCommands.stopAgent, { agent });
    vscode.window.setStatusBarMessage(`Infinity Matrix: agent ${agent} stopped`, 4000);
  }

  async cancelTask(arg?: unknown): Promise<void> {
    const taskId = taskIdOf(arg) ?? (await this.pickTask((t) => !isTerminal(t.state), 'Cancel which task?'));
    if (!taskId) return;
    await this.runServerCommand(ServerCommands.cancelTask, { taskId });
  }

  async approve(arg: unknown, accept: boolean): Promise<void> {
    let taskId = taskIdOf(arg);
    if (arg && typeof arg === 'object' && typeof (arg as Record<string, unknown>).accept === 'boolean') {
      accept = (arg as { accept: boolean }).accept;
    }
    if (!taskId) {
      const active = vscode.window.activeTextEditor?.document.uri;
      taskId = active?.scheme === PROPOSAL_SCHEME ? taskIdOfUri(active) : undefined;
    }
    taskId ??= await this.pickTask((t) => t.state === 'awaiting_approval', accept ? 'Apply which edit?' : 'Reject which edit?');
    if (!taskId) return;
    await this.runServerCommand(ServerCommands.approve, { taskId, accept });
    vscode.window.setStatusBarMessage(`Infinity Matrix: edit ${accept ? 'applied' : 'rejected'} (task ${shortTaskId(taskId)})`, 4000);
    await closeProposalTabs(taskId);
  }

  // ---- results ---------------------------------------------------------------------------------

  async openResult(arg?: unknown): Promise<void> {
    const taskId = taskIdOf(arg) ?? (await this.pickTask(() => true, 'Open the result of which task?'));
    if (!taskId) return;
    const ui = vscode.workspace.getConfiguration('infinityMatrix.ui');
    if (ui.get<string>('answerView', 'panel') === 'document') await this.showTask(taskId, false);
    else await this.h.panel.show(taskId, false);
    void this.h.fetchTask(taskId);
  }

  /** The task's answer as a read-only Markdown document. */
  async openResultDocument(arg?: unknown): Promise<void> {
    const taskId = taskIdOf(arg) ?? (await this.pickTask(() => true, 'Open the result of which task?'));
    if (taskId) await this.showTask(taskId, false);
  }

  /** A diff between the document and the proposed edit, with Apply / Reject in the title bar. */
  async previewEdit(arg?: unknown): Promise<void> {
    const taskId = taskIdOf(arg) ?? (await this.pickTask((t) => t.state === 'awaiting_approval', 'Preview which edit?'));
    if (!taskId) return;
    const detail = await this.h.fetchTask(taskId);
    if (!detail) throw new Error(`task ${taskId} is unknown to the server`);
    const edit = detail.edit;
    if (!edit) {
      void vscode.window.showInformationMessage(`Infinity Matrix: task ${shortTaskId(taskId)} has no proposed edit (${stateLabel(detail.state)}).`);
      return;
    }
    const client = this.client();
    const docUri = client.protocol2CodeConverter.asUri(edit.uri);
    const doc = await vscode.workspace.openTextDocument(docUri);
    const original = doc.getText();
    const proposed = applyEdit(original, edit.range, edit.newText);
    const file = path.posix.basename(docUri.path) || 'document';
    const left = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${taskId}/original/${file}` });
    const right = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${taskId}/proposed/${file}` });
    this.h.memDocs.set(left, original);
    this.h.memDocs.set(right, proposed);
    const stale = edit.version !== null && edit.version !== doc.version ? ' — document changed since' : '';
    const title = `${file}: ${detail.agent} ${shortTaskId(taskId)} proposal (${linesChangedLabel(edit.linesChanged)})${stale}`;
    await vscode.commands.executeCommand('vscode.diff', left, right, title, { preview: true });
  }

  async showContext(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !['file', 'untitled'].includes(editor.document.uri.scheme)) {
      void vscode.window.showWarningMessage('Infinity Matrix: open a file and place the cursor first.');
      return;
    }
    const client = this.client();
    const c2p = client.code2ProtocolConverter;
    const sel = editor.selection;
    const budget = vscode.workspace.getConfiguration('infinityMatrix.defaults').get<number>('context_budget_tokens', 4096);
    const diags = vscode.languages.getDiagnostics(editor.document.uri).filter((d) => d.source !== OWN_DIAGNOSTIC_SOURCE);
    const params: ContextParams = {
      textDocument: { uri: c2p.asUri(editor.document.uri) },
      position: c2p.asPosition(sel.active),
      ...(sel.isEmpty ? {} : { range: c2p.asRange(sel) }),
      budgetTokens: budget,
      diagnostics: await c2p.asDiagnostics(diags),
    };
    const result = await client.sendRequest<ContextResult>(Methods.context, params);
    const langOf = (uri: string) => {
      const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      return open?.languageId ?? path.extname(uri).replace('.', '');
    };
    const where = { uri: editor.document.uri.toString(), line: sel.active.line, character: sel.active.character };
    if (vscode.workspace.getConfiguration('infinityMatrix.ui').get<string>('answerView', 'panel') !== 'document') {
      await this.h.panel.showTable(contextTable(result, where));
      return;
    }
    const text = renderContextDocument(result, where, langOf);
    const name = `Context ${basename(editor.document.uri.toString())}-${sel.active.line + 1}.md`;
    const uri = vscode.Uri.from({ scheme: VIEW_SCHEME, path: `/${name}` });
    this.h.memDocs.set(uri, text);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
  }

  async showAudit(): Promise<void> {
    const client = this.client();
    const result = await client.sendRequest<AuditResult>(Methods.audit, { limit: 200 });
    if (vscode.workspace.getConfiguration('infinityMatrix.ui').get<string>('answerView', 'panel') !== 'document') {
      await this.h.panel.showTable(auditTable(result.entries ?? []));
      return;
    }
    const uri = vscode.Uri.from({ scheme: VIEW_SCHEME, path: '/Audit log.md' });
    this.h.memDocs.set(uri, renderAuditDocument(result.entries ?? []));
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  // ---- keys -------------------------------------------------------------------------------------

  private async keyNames(): Promise<string[]> {
    const names = new Set<string>(await this.h.secrets.names());
    const providers = vscode.workspace.getConfiguration('infinityMatrix').get<Record<string, { api_key_env?: unknown }>>('providers') ?? {};
    for (const p of Object.values(providers)) {
      if (p && typeof p.api_key_env === 'string' && isSecretName(p.api_key_env)) names.add(p.api_key_env);
    }
    for (const n of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY']) names.add(n);
    return [...names];
  }

  async setApiKey(arg?: unknown): Promise<void> {
    let name = typeof arg === 'string' ? arg : undefined;
    if (!name) {
      const stored = new Set(await this.h.secrets.names());
      const items: (vscode.QuickPickItem & { name?: string })[] = (await this.keyNames()).map((n) => ({
        label: n,
        description: stored.has(n) ? 'stored' : '',
        name: n,
      }));
      items.push({ label: '$(edit) Another name…' });
      const pick = await vscode.window.showQuickPick(items, {
        title: 'Infinity Matrix: Set API Key',
        placeHolder: 'The variable name a provider names in api_key_env',
      });
      if (!pick) return;
      name =
        pick.name ??
        (await vscode.window.showInputBox({
          title: 'Infinity Matrix: API key name',
          prompt: 'The name used in a provider\'s api_key_env, e.g. MY_PROVIDER_KEY',
          validateInput: (v) => (isSecretName(v) ? undefined : 'Letters, digits and _ only, not starting with a digit'),
        }));
      if (!name) return;
    }
    const value = await vscode.window.showInputBox({
      title: `Infinity Matrix: value of ${name}`,
      prompt: 'Stored in VS Code\'s secret storage and sent to the server; never written to settings.',
      password: true,
      ignoreFocusOut: true,
    });
    if (value === undefined) return;
    await this.h.secrets.set(name, value);
    void vscode.window.showInformationMessage(`Infinity Matrix: ${name} stored in secret storage.`);
  }

  /**
   * Configure Provider: pick a kind, enter its URL / model (defaults filled in) and key (into
   * secret storage, never settings), write the user settings, test the connection, then offer
   * to run Explain.
   */
  async configureProvider(): Promise<void> {
    const title = 'Infinity Matrix: Configure Provider';
    const pick = await vscode.window.showQuickPick(
      PROVIDER_CHOICES.map((c) => ({ label: c.label, detail: c.detail, choice: c })),
      { title, placeHolder: 'Where should agents send their prompts?', ignoreFocusOut: true },
    );
    if (!pick) return;
    const choice = pick.choice;
    const config = vscode.workspace.getConfiguration('infinityMatrix');
    const existing = config.get<Record<string, unknown>>('providers') ?? {};
    const name = await vscode.window.showInputBox({
      title,
      prompt: 'A name for this provider (agents name it in their chain)',
      value: choice.name,
      ignoreFocusOut: true,
      validateInput: (v) => (isProviderName(v) ? undefined : 'Letters, digits, - and _ only'),
    });
    if (!name) return;
    const ask = async (prompt: string, value: string | undefined) =>
      vscode.window.showInputBox({ title, prompt, value: value ?? '', ignoreFocusOut: true });
    const baseUrl = choice.askUrl ? await ask('Base URL', choice.baseUrl) : undefined;
    if (choice.askUrl && baseUrl === undefined) return;
    const model = choice.askModel ? await ask('Model', choice.model) : undefined;
    if (choice.askModel && model === undefined) return;
    let project: string | undefined;
    let location: string | undefined;
    if (choice.kind === 'vertex') {
      project = await ask('Google Cloud project id', '');
      if (!project) return;
      location = await ask('Location', 'us-central1');
      if (!location) return;
    }
    let keyEnv: string | undefined;
    if (choice.keyEnv) {
      const local = baseUrl && /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(baseUrl);
      const key = await vscode.window.showInputBox({
        title,
        prompt: `API key (stored in VS Code's secret storage as ${choice.keyEnv}, never in settings)${local ? '; leave empty for a local server without a key' : ''}`,
        password: true,
        ignoreFocusOut: true,
      });
      if (key === undefined) return;
      if (key) {
        keyEnv = choice.keyEnv;
        await this.h.secrets.set(keyEnv, key);
      }
    }
    const entry = providerEntry(choice, { name, baseUrl: baseUrl || undefined, model: model || undefined, keyEnv, project, location });
    const next = withProvider(existing, config.get<string[] | null>('defaults.providers'), name, entry);
    await config.update('providers', next.providers, vscode.ConfigurationTarget.Global);
    await config.update('defaults.providers', next.chain, vscode.ConfigurationTarget.Global);
    vscode.window.setStatusBarMessage(`Infinity Matrix: provider ${name} saved to your user settings`, 4000);
    // The server reloads its configuration from the settings change; give it a moment.
    await new Promise((r) => setTimeout(r, 1500));
    const ok = await this.testConnection(name);
    if (ok) {
      const run = await vscode.window.showInformationMessage(
        `Infinity Matrix: ${name} answers. Select some code and run Explain to try it.`,
        'Explain the Selection',
      );
      if (run) await this.startAgent({ agent: 'explain', ...(await this.activeTarget()) });
    }
  }

  private async activeTarget(): Promise<Record<string, unknown>> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !['file', 'untitled'].includes(editor.document.uri.scheme)) return {};
    return this.editorTarget(editor);
  }

  /** Runs the same checks as `infinity-matrix doctor` on one provider and shows the result. */
  async testConnection(arg?: unknown): Promise<boolean> {
    let name = typeof arg === 'string' ? arg : undefined;
    if (!name && arg && typeof arg === 'object' && typeof (arg as Record<string, unknown>).name === 'string') {
      name = (arg as { name: string }).name;
    }
    if (!name) {
      const providers = this.h.model.providers;
      if (!providers.length) {
        void vscode.window.showWarningMessage('Infinity Matrix: no provider is configured.', 'Configure Provider').then((c) => {
          if (c) void this.configureProvider();
        });
        return false;
      }
      const pick = await vscode.window.showQuickPick(providers.map((p) => ({ label: p.name, description: `${p.kind} · ${p.model}` })), {
        title: 'Infinity Matrix: Test Connection',
      });
      if (!pick) return false;
      name = pick.label;
    }
    const client = this.client();
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Infinity Matrix: testing ${name}…` },
      () => client.sendRequest<TestProviderResult>(Methods.testProvider, { name }),
    );
    if (result.ok) {
      void vscode.window.showInformationMessage(`Infinity Matrix: ${name} — ${result.summary}`);
    } else {
      void vscode.window.showErrorMessage(`Infinity Matrix: ${name} — ${result.summary}`, 'Configure Provider', 'Show Log').then((c) => {
        if (c === 'Configure Provider') void this.configureProvider();
        else if (c === 'Show Log') this.h.server.output.show(true);
      });
    }
    return result.ok;
  }

  async removeApiKey(): Promise<void> {
    const names = await this.h.secrets.names();
    if (!names.length) {
      void vscode.window.showInformationMessage('Infinity Matrix: no API keys are stored.');
      return;
    }
    const pick = await vscode.window.showQuickPick(names, { title: 'Infinity Matrix: Remove API Key' });
    if (!pick) return;
    await this.h.secrets.remove(pick);
    void vscode.window.showInformationMessage(`Infinity Matrix: ${pick} removed.`);
  }
}

/** Closes the diff preview(s) of a task's proposal. */
export async function closeProposalTabs(taskId: string): Promise<void> {
  const tabs: vscode.Tab[] = [];
  for (const group of vscode.window.tabGroups.all) {
    for (const tab of group.tabs) {
      const input = tab.input;
      const uri =
        input instanceof vscode.TabInputTextDiff ? input.modified : input instanceof vscode.TabInputText ? input.uri : undefined;
      if (uri?.scheme === PROPOSAL_SCHEME && taskIdOfUri(uri) === taskId) tabs.push(tab);
    }
  }
  if (tabs.length) await vscode.window.tabGroups.close(tabs, true);
}
