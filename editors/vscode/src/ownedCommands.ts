/**
 * Keeping vscode-languageclient from registering the server's commands as VS Code commands.
 *
 * The server lists infinity-matrix.startAgent / stopAgent / executePrompt / cancelTask /
 * approve in `executeCommandProvider.commands`. For such a list vscode-languageclient's
 * ExecuteCommandFeature registers a VS Code command per id that forwards its arguments
 * unchanged; the extension registers the same ids itself (quick picks, the active editor's
 * selection and diagnostics, result documents), and the second registration would fail with
 * "command already exists". {@link OwnedCommandsFilter} wraps the built-in feature (through
 * the public `registerFeature` hook, see client.ts) and drops the extension's own ids from
 * the static capability and from dynamic registrations; any other command the server adds is
 * still registered by the client as usual.
 *
 * Only type imports from vscode-languageclient: this module runs in plain node (unit tests).
 */
import type {
  ClientCapabilities,
  DocumentSelector,
  DynamicFeature,
  ExecuteCommandRegistrationOptions,
  FeatureState,
  InitializeParams,
  RegistrationData,
  RegistrationType,
  ServerCapabilities,
} from 'vscode-languageclient';
import { ServerCommands } from './lsp_ext';

/** `workspace/executeCommand`: the method of the feature to wrap. */
export const EXECUTE_COMMAND_METHOD = 'workspace/executeCommand';

/** Server commands the extension registers itself. */
export const OWNED_COMMANDS: ReadonlySet<string> = new Set(Object.values(ServerCommands));

export function withoutOwned(commands: readonly string[] | undefined): string[] {
  return (commands ?? []).filter((c) => !OWNED_COMMANDS.has(c));
}

export class OwnedCommandsFilter implements DynamicFeature<ExecuteCommandRegistrationOptions> {
  constructor(private readonly inner: DynamicFeature<ExecuteCommandRegistrationOptions>) {}

  get registrationType(): RegistrationType<ExecuteCommandRegistrationOptions> {
    return this.inner.registrationType;
  }

  getState(): FeatureState {
    return this.inner.getState();
  }

  fillInitializeParams(params: InitializeParams): void {
    this.inner.fillInitializeParams?.(params);
  }

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    this.inner.fillClientCapabilities(capabilities);
  }

  preInitialize(capabilities: ServerCapabilities, documentSelector: DocumentSelector | undefined): void {
    this.inner.preInitialize?.(capabilities, documentSelector);
  }

  initialize(capabilities: ServerCapabilities, documentSelector: DocumentSelector | undefined): void {
    const provider = capabilities.executeCommandProvider;
    const filtered: ServerCapabilities = provider
      ? { ...capabilities, executeCommandProvider: { ...provider, commands: withoutOwned(provider.commands) } }
      : capabilities;
    this.inner.initialize(filtered, documentSelector);
  }

  register(data: RegistrationData<ExecuteCommandRegistrationOptions>): void {
    this.inner.register({
      ...data,
      registerOptions: { ...data.registerOptions, commands: withoutOwned(data.registerOptions.commands) },
    });
  }

  unregister(id: string): void {
    this.inner.unregister(id);
  }

  clear(): void {
    this.inner.clear();
  }
}
