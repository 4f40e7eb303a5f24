/**
 * The Agents tree: agents → their tasks, and a Providers node with health and circuit state.
 * Nodes are stable objects (one per agent / task / provider), so a model change refreshes
 * exactly the changed elements.
 */
import * as vscode from 'vscode';
import { agentView, type ItemView, orphanAgentView, providersRootView, providerView, taskView } from './format';
import { isTerminal } from './lsp_ext';
import type { AgentModel, ModelChange } from './model';

export class AgentNode {
  readonly kind = 'agent';
  constructor(readonly name: string) {}
}
export class TaskNode {
  readonly kind = 'task';
  constructor(readonly id: string) {}
}
export class ProvidersNode {
  readonly kind = 'providers';
}
export class ProviderNode {
  readonly kind = 'provider';
  constructor(readonly name: string) {}
}
export type Node = AgentNode | TaskNode | ProvidersNode | ProviderNode;

function icon(view: ItemView): vscode.ThemeIcon {
  return view.icon.color ? new vscode.ThemeIcon(view.icon.id, new vscode.ThemeColor(view.icon.color)) : new vscode.ThemeIcon(view.icon.id);
}

export class AgentsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | Node[] | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly agentNodes = new Map<string, AgentNode>();
  private readonly taskNodes = new Map<string, TaskNode>();
  private readonly providerNodes = new Map<string, ProviderNode>();
  private readonly providersNode = new ProvidersNode();
  private visible = true;
  private readonly ticker: NodeJS.Timeout;
  /** Whether each agent was last rendered with tasks (its item id depends on it, see getTreeItem). */
  private readonly renderedWithTasks = new Map<string, boolean>();

  constructor(private readonly model: AgentModel) {
    // Elapsed time of active tasks: refresh those items only, once a second.
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  /** Whether the tree shows the model (false: empty, so the welcome view shows). */
  setVisible(visible: boolean): void {
    if (this.visible !== visible) {
      this.visible = visible;
      this.emitter.fire(undefined);
    }
  }

  agentNode(name: string): AgentNode {
    let n = this.agentNodes.get(name);
    if (!n) {
      n = new AgentNode(name);
      this.agentNodes.set(name, n);
    }
    return n;
  }

  taskNode(id: string): TaskNode {
    let n = this.taskNodes.get(id);
    if (!n) {
      n = new TaskNode(id);
      this.taskNodes.set(id, n);
    }
    return n;
  }

  private providerNode(name: string): ProviderNode {
    let n = this.providerNodes.get(name);
    if (!n) {
      n = new ProviderNode(name);
      this.providerNodes.set(name, n);
    }
    return n;
  }

  /** Refreshes what a model update changed, element by element. */
  update(change: ModelChange): void {
    if (!this.visible) return;
    if (change.root) {
      this.forgetStale();
      this.emitter.fire(undefined);
      return;
    }
    const nodes: Node[] = [];
    const agentsFired = new Set<string>();
    for (const name of change.agents) {
      const has = this.model.tasksOf(name).length > 0;
      const was = this.renderedWithTasks.get(name);
      if (was !== undefined && was !== has) {
        // The agent's first task (or its last one gone): a new item id so that VS Code shows
        // it expanded; that needs its parent, the root, refreshed.
        this.forgetStale();
        this.emitter.fire(undefined);
        return;
      }
      agentsFired.add(name);
      nodes.push(this.agentNode(name));
    }
    for (const id of change.tasks) {
      const t = this.model.task(id);
      // a task whose agent is refreshed is re-rendered with it
      if (t && !agentsFired.has(t.agent)) nodes.push(this.taskNode(id));
    }
    if (change.providers) nodes.push(this.providersNode);
    if (nodes.length) {
      this.forgetStale();
      this.emitter.fire(nodes);
    }
  }

  private forgetStale(): void {
    for (const id of [...this.taskNodes.keys()]) {
      if (!this.model.task(id)) this.taskNodes.delete(id);
    }
  }

  private tick(): void {
    if (!this.visible) return;
    const active = this.model.tasks.filter((t) => !isTerminal(t.state) && t.state !== 'awaiting_approval');
    if (active.length) this.emitter.fire(active.map((t) => this.taskNode(t.id)));
  }

  getChildren(node?: Node): Node[] {
    if (!this.visible) return [];
    if (!node) {
      const roots: Node[] = this.model.agents.map((a) => this.agentNode(a.name));
      for (const name of this.model.orphanAgents()) roots.push(this.agentNode(name));
      if (this.model.providers.length) roots.push(this.providersNode);
      return roots;
    }
    switch (node.kind) {
      case 'agent':
        return this.model.tasksOf(node.name).map((t) => this.taskNode(t.id));
      case 'providers':
        return this.model.providers.map((p) => this.providerNode(p.name));
      default:
        return [];
    }
  }

  getParent(node: Node): Node | undefined {
    switch (node.kind) {
      case 'task': {
        const t = this.model.task(node.id);
        return t ? this.agentNode(t.agent) : undefined;
      }
      case 'provider':
        return this.providersNode;
      default:
        return undefined;
    }
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.kind) {
      case 'agent': {
        const a = this.model.agent(node.name);
        const view = a ? agentView(a) : orphanAgentView(node.name);
        const hasTasks = this.model.tasksOf(node.name).length > 0;
        this.renderedWithTasks.set(node.name, hasTasks);
        const item = new vscode.TreeItem(
          view.label,
          hasTasks ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
        );
        // VS Code keeps an item's collapsible state by id: a leaf that gains children would stay
        // collapsed, so the id changes with it and the agent opens on its first task.
        item.id = `agent:${node.name}${hasTasks ? '' : ':empty'}`;
        return this.fill(item, view);
      }
      case 'task': {
        const t = this.model.task(node.id);
        if (!t) {
          const gone = new vscode.TreeItem(node.id);
          gone.id = `task:${node.id}`;
          return gone;
        }
        const view = taskView(t, Date.now());
        const item = new vscode.TreeItem(view.label, vscode.TreeItemCollapsibleState.None);
        item.id = `task:${t.id}`;
        this.fill(item, view);
        item.command =
          t.state === 'awaiting_approval'
            ? { command: 'infinity-matrix.previewEdit', title: 'Preview Proposed Edit', arguments: [node] }
            : { command: 'infinity-matrix.openResult', title: 'Open Task Result', arguments: [node] };
        return item;
      }
      case 'providers': {
        const view = providersRootView(this.model.providers);
        const item = new vscode.TreeItem(view.label, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = 'providers';
        return this.fill(item, view);
      }
      case 'provider': {
        const p = this.model.provider(node.name);
        if (!p) return new vscode.TreeItem(node.name);
        const view = providerView(p);
        const item = new vscode.TreeItem(view.label, vscode.TreeItemCollapsibleState.None);
        item.id = `provider:${p.name}`;
        return this.fill(item, view);
      }
    }
  }

  private fill(item: vscode.TreeItem, view: ItemView): vscode.TreeItem {
    item.description = view.description;
    const md = new vscode.MarkdownString(view.tooltip);
    md.supportThemeIcons = true;
    item.tooltip = md;
    item.iconPath = icon(view);
    item.contextValue = view.contextValue;
    return item;
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.emitter.dispose();
  }
}
