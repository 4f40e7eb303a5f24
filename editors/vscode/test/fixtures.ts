import type { AgentStatus, ProviderStatus, StatusSnapshot, TaskInfo } from '../src/lsp_ext';

export function task(over: Partial<TaskInfo> & { id: string }): TaskInfo {
  return {
    agent: 'explain',
    state: 'queued',
    output: 'answer',
    uri: 'file:///ws/src/main.rs',
    priority: 0,
    createdAtMs: 1_000,
    startedAtMs: null,
    finishedAtMs: null,
    provider: null,
    model: null,
    attempts: 0,
    retries: 0,
    error: null,
    ...over,
  };
}

export function agent(over: Partial<AgentStatus> & { name: string }): AgentStatus {
  return {
    description: `${over.name} agent`,
    state: 'idle',
    background: false,
    enabled: false,
    running: 0,
    queued: 0,
    output: 'answer',
    providers: ['local'],
    ...over,
  };
}

export function provider(over: Partial<ProviderStatus> & { name: string }): ProviderStatus {
  return { kind: 'openai', model: 'm', circuit: 'closed', consecutiveFailures: 0, error: null, ...over };
}

export function status(over: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    agents: [agent({ name: 'explain' }), agent({ name: 'fix', output: 'edit' })],
    tasks: [],
    providers: [provider({ name: 'local' })],
    running: 0,
    queued: 0,
    ...over,
  };
}
