/**
 * Infinity Matrix Agent: a thin client of the `infinity-matrix` language server.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { ServerManager } from './client';
import { closeProposalTabs, type CommandHost, Commands } from './commands';
import { MemoryDocuments, PROPOSAL_SCHEME, TASK_SCHEME, TaskDocuments, VIEW_SCHEME } from './documents';
import {
  type AgentsResult,
  CONFIG_SECTION,
  type DiagnosticsChangedParams,
  Methods,
  parseStatus,
  parseTaskEvent,
  type TaskDetail,
  type TaskInfo,
} from './lsp_ext';
import { AgentModel, isEmptyChange, type ModelChange } from './model';
import { ANSWER_VIEW_ID, AnswerPanel } from './panel/answerPanel';
import { taskLabel } from './panel/turns';
import { Secrets } from './secrets';
import { AgentMonitor } from './statusBar';
import { AgentsTree, type Node } from './tree';

const BUILTIN_CHAIN_KEY = 'infinityMatrix.useBuiltinChain';

class Extension implements CommandHost {
  readonly model = new AgentModel();
  readonly memDocs = new MemoryDocuments();
  readonly ownTasks = new Set<string>();
  readonly server: ServerManager;
  readonly secrets: Secrets;
  readonly panel: AnswerPanel;
  private readonly commands: Commands;
  private readonly tree: AgentsTree;
  private readonly treeView: vscode.TreeView<Node>;
  private readonly monitor: AgentMonitor;
  private readonly taskDocs: TaskDocuments;
  private readonly output: vscode.OutputChannel;
  private agentsCache: AgentsResult | undefined;
  private readonly inflight = new Map<string, Promise<TaskDetail | undefined>>();
  private unconfigured = false;
  private readonly diagTimers = new Map<string, NodeJS.Timeout>();
  /** Background agents that were enabled when the server stopped. */
  private readonly enabledAgents = new Set<string>();

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('Infinity Matrix');
    const trace = vscode.window.createOutputChannel('Infinity Matrix Trace');
    context.subscriptions.push(this.output, trace);

    this.server = new ServerManager(context, this.output, trace, {
      onClientCreated: (client) => this.wire(client),
      onRunning: (client) => this.onRunning(client),
      onStopped: () => {
        // Background agents the user enabled are enabled again on the next server.
        for (const a of this.model.agents) if (a.background && a.enabled) this.enabledAgents.add(a.name);
        this.apply(this.model.serverStopped());
      },
    });
    this.secrets = new Secrets(context, () => this.server.running, (m) => this.log(m));
    this.tree = new AgentsTree(this.model);
    this.treeView = vscode.window.createTreeView('infinityMatrixAgents', { treeDataProvider: this.tree, showCollapseAll: true });
    this.monitor = new AgentMonitor(this.model);
    this.taskDocs = new TaskDocuments(this.model, (id) => void this.fetchTask(id));
    this.commands = new Commands(this);
    this.panel = new AnswerPanel(context.extensionUri, {
      model: this.model,
      cancel: (taskId) => this.commands.cancelTask(taskId),
      retry: (taskId, request) => this.commands.retry(taskId, request),
      ask: (text, parent) => this.commands.ask(text, parent),
      apply: (taskId, code, request) => this.commands.applyCode(taskId, code, request),
      log: (m) => this.log(m),
    });
    context.subscriptions.push(
      this.panel,
      vscode.window.registerWebviewViewProvider(ANSWER_VIEW_ID, this.panel, { webviewOptions: { retainContextWhenHidden: true } }),
      this.secrets,
      this.tree,
      this.treeView,
      this.monitor,
      this.taskDocs,
      this.memDocs,
      vscode.workspace.registerTextDocumentContentProvider(TASK_SCHEME, this.taskDocs),
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this.memDocs),
      vscode.workspace.registerTextDocumentContentProvider(VIEW_SCHEME, this.memDocs),
      this.server.onDidChangeState((s) => {
        this.monitor.setServerState(s);
        void vscode.commands.executeCommand('setContext', 'infinityMatrix.running', s.kind === 'running');
        const ctx = s.kind === 'restarting' ? 'stopped' : s.kind;
        void vscode.commands.executeCommand('setContext', 'infinityMatrix.state', ctx);
        this.updateTreeVisibility();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => this.configurationChanged(e)),
      vscode.languages.onDidChangeDiagnostics((e) => this.diagnosticsChanged(e)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        if (d.uri.scheme === PROPOSAL_SCHEME) this.memDocs.deleteWhere((k) => k === d.uri.toString());
      }),
      { dispose: () => void this.server.dispose() },
    );
    this.commands.register(context);
    void vscode.commands.executeCommand('setContext', 'infinityMatrix.state', 'starting');
    this.refreshConfigured();
  }

  log(message: string): void {
    this.output.appendLine(`[client ${new Date().toISOString()}] ${message}`);
  }

  async start(): Promise<void> {
    await this.server.start();
  }

  // ---- server wiring --------------------------------------------------------------------------

  private wire(client: LanguageClient): void {
    client.onNotification(Methods.agentStatus, (params: unknown) => {
      const status = parseStatus(params);
      if (status) this.apply(this.model.applyStatus(status));
    });
    client.onNotification(Methods.taskEvent, (params: unknown) => {
      const ev = parseTaskEvent(params);
      if (ev) this.apply(this.model.applyTaskEvent(ev));
    });
  }

  private async onRunning(client: LanguageClient): Promise<void> {
    await this.secrets.sendAll();
    // The server sends agentStatus when tasks change; start from its agents and tasks.
    await this.agents(true);
    try {
      const res = await client.sendRequest<{ tasks?: TaskInfo[] }>(Methods.tasks);
      for (const t of res.tasks ?? []) this.apply(this.model.applyTaskEvent({ type: 'state', task: t }));
      this.apply(this.model.settleUnknown(new Set((res.tasks ?? []).map((t) => t.id)), Date.now()));
    } catch (e) {
      this.log(`${Methods.tasks} failed: ${String(e)}`);
    }
    for (const agent of [...this.enabledAgents]) {
      this.enabledAgents.delete(agent);
      try {
        await client.sendRequest('workspace/executeCommand', { command: 'infinity-matrix.startAgent', arguments: [{ agent }] });
        this.log(`background agent ${agent} enabled again after the restart`);
      } catch (e) {
        this.log(`enabling ${agent} again failed: ${String(e)}`);
      }
    }
  }

  /** The server's agents (cached; `refresh` asks again). */
  async agents(refresh = false): Promise<AgentsResult | undefined> {
    const client = this.server.running;
    if (!client) return this.agentsCache;
    if (this.agentsCache && !refresh) return this.agentsCache;
    try {
      const res = await client.sendRequest<AgentsResult>(Methods.agents);
      this.agentsCache = res;
      this.apply(this.model.applyAgentDefs(res.agents ?? []));
    } catch (e) {
      this.log(`${Methods.agents} failed: ${String(e)}`);
    }
    return this.agentsCache;
  }

  fetchTask(taskId: string): Promise<TaskDetail | undefined> {
    const existing = this.inflight.get(taskId);
    if (existing) return existing;
    const client = this.server.running;
    if (!client) return Promise.resolve(undefined);
    const p = (async () => {
      try {
        const detail = await client.sendRequest<TaskDetail>(Methods.task, { taskId });
        this.apply(this.model.applyDetail(detail));
        this.panel.detail(detail);
        return detail;
      } catch (e) {
        this.log(`${Methods.task} ${taskId} failed: ${String(e)}`);
        return undefined;
      } finally {
        this.inflight.delete(taskId);
      }
    })();
    this.inflight.set(taskId, p);
    return p;
  }

  /** Routes a model change to the tree, the status bar and the documents. */
  private apply(change: ModelChange): void {
    if (isEmptyChange(change)) return;
    this.tree.update(change);
    this.monitor.render();
    const changedTasks = new Set([...change.text, ...change.tasks, ...change.finished, ...change.awaiting]);
    for (const id of changedTasks) {
      this.taskDocs.changed(id);
    }
    this.panel.changed(changedTasks);
    if (change.summary) {
      void vscode.commands.executeCommand('setContext', 'infinityMatrix.awaitingApproval', this.model.summary().awaitingApproval > 0);
    }
    for (const id of change.finished) {
      // The final text is authoritative (it fills any gap in the stream).
      if (this.ownTasks.has(id) || this.taskDocs.isOpen(id) || this.panel.request(id)) void this.fetchTask(id);
      void closeProposalTabs(id);
      const t = this.model.task(id);
      if (t && this.ownTasks.has(id) && t.state === 'failed') {
        // Advice that fits where the user is: a provider problem gets the Configure Provider button.
        const providerTrouble = /no provider|provider|unreachable|connection refused|api key|unauthori[sz]ed/i.test(t.error ?? '');
        const actions = providerTrouble ? ['Configure Provider', 'Show Result'] : ['Show Result', 'Show Log'];
        void vscode.window
          .showErrorMessage(`Infinity Matrix: ${taskLabel(t)} failed: ${t.error ?? 'unknown error'}`, ...actions)
          .then((c) => {
            if (c === 'Show Result') void vscode.commands.executeCommand('infinity-matrix.openResult', id);
            else if (c === 'Show Log') this.output.show(true);
            else if (c === 'Configure Provider') void vscode.commands.executeCommand('infinity-matrix.configureProvider');
          });
      }
    }
    for (const id of change.awaiting) {
      if (this.ownTasks.has(id) && vscode.workspace.getConfiguration('infinityMatrix.ui').get<boolean>('previewEdits', true)) {
        void vscode.commands.executeCommand('infinity-matrix.previewEdit', id);
      }
    }
  }

  // ---- views ---------------------------------------------------------------------------------

  async focusAgents(): Promise<void> {
    await vscode.commands.executeCommand('infinityMatrixAgents.focus');
  }

  private updateTreeVisibility(): void {
    this.tree.setVisible(this.server.state.kind === 'running' && !this.unconfigured);
  }

  /** Nothing configured: no provider in settings, no config file, and the built-in chain not chosen. */
  private refreshConfigured(): void {
    const providers = vscode.workspace.getConfiguration(CONFIG_SECTION).inspect<Record<string, unknown>>('providers');
    const set = [providers?.globalValue, providers?.workspaceValue, providers?.workspaceFolderValue].some(
      (v) => v && typeof v === 'object' && Object.keys(v).length > 0,
    );
    const xdg = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
    const userFile = path.join(xdg, 'infinity-matrix', 'config.toml');
    const wsFile = (vscode.workspace.workspaceFolders ?? []).some(
      (f) => f.uri.scheme === 'file' && fs.existsSync(path.join(f.uri.fsPath, '.infinity-matrix.toml')),
    );
    const chosen = this.context.globalState.get<boolean>(BUILTIN_CHAIN_KEY, false);
    this.unconfigured = !(set || fs.existsSync(userFile) || wsFile || chosen);
    void vscode.commands.executeCommand('setContext', 'infinityMatrix.unconfigured', this.unconfigured);
    this.monitor.setUnconfigured(this.unconfigured);
    this.updateTreeVisibility();
  }

  async useBuiltinChain(): Promise<void> {
    await this.context.globalState.update(BUILTIN_CHAIN_KEY, true);
    this.refreshConfigured();
  }

  private configurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration(CONFIG_SECTION)) return;
    this.refreshConfigured();
    if (
      e.affectsConfiguration(`${CONFIG_SECTION}.server.path`) ||
      e.affectsConfiguration(`${CONFIG_SECTION}.log.level`) ||
      e.affectsConfiguration(`${CONFIG_SECTION}.index`)
    ) {
      this.log('server path, log level or index settings changed: restarting the server');
      void this.server.restart();
      return;
    }
    // The client pushes the change (workspace/didChangeConfiguration); the agent list may change.
    setTimeout(() => void this.agents(true), 1000);
  }

  // ---- diagnostics → onDiagnostics agents ----------------------------------------------------------

  private diagnosticsChanged(e: vscode.DiagnosticChangeEvent): void {
    const client = this.server.running;
    if (!client) return;
    for (const uri of e.uris) {
      if (uri.scheme !== 'file') continue;
      const key = uri.toString();
      if (!vscode.workspace.textDocuments.some((d) => d.uri.toString() === key)) continue;
      const old = this.diagTimers.get(key);
      if (old) clearTimeout(old);
      this.diagTimers.set(
        key,
        setTimeout(() => {
          this.diagTimers.delete(key);
          void (async () => {
            const c = this.server.running;
            if (!c) return;
            const diags = vscode.languages.getDiagnostics(uri).filter((d) => d.source !== 'infinity-matrix');
            if (!diags.length) return;
            const params: DiagnosticsChangedParams = {
              textDocument: { uri: c.code2ProtocolConverter.asUri(uri) },
              diagnostics: await c.code2ProtocolConverter.asDiagnostics(diags),
            };
            await c.sendNotification(Methods.diagnosticsChanged, params);
          })().catch((err) => this.log(`diagnosticsChanged: ${String(err)}`));
        }, 750),
      );
    }
  }

  dispose(): void {
    for (const t of this.diagTimers.values()) clearTimeout(t);
  }
}

let ext: Extension | undefined;

export function activate(context: vscode.ExtensionContext): void {
  ext = new Extension(context);
  context.subscriptions.push(ext);
  // Activation does not wait for the server: the status bar and the Agents view report its state.
  void ext.start();
}

export async function deactivate(): Promise<void> {
  if (ext) {
    await ext.server.dispose();
    ext = undefined;
  }
}
