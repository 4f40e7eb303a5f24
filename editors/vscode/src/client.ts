/**
 * Starting, watching and restarting the language server (vscode-languageclient over stdio).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  type DynamicFeature,
  ErrorAction,
  type ErrorHandlerResult,
  type ExecuteCommandRegistrationOptions,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  type StaticFeature,
} from 'vscode-languageclient/node';
import type { ServerState } from './format';
import { CONFIG_SECTION, EXPERIMENTAL_CAPABILITIES, SERVER_CONFIG_KEYS, initializationOptions, serverSettings } from './lsp_ext';
import { EXECUTE_COMMAND_METHOD, OwnedCommandsFilter } from './ownedCommands';
import { type Probe, resolveServer } from './serverPath';

/**
 * A LanguageClient whose built-in ExecuteCommandFeature leaves the extension's own commands
 * alone (see ownedCommands.ts). `registerFeature` is the public hook the client's constructor
 * calls for each built-in feature.
 */
export class InfinityMatrixClient extends LanguageClient {
  override registerFeature(feature: StaticFeature | DynamicFeature<unknown>): void {
    const dyn = feature as Partial<DynamicFeature<unknown>>;
    if (dyn.registrationType?.method === EXECUTE_COMMAND_METHOD) {
      super.registerFeature(new OwnedCommandsFilter(feature as DynamicFeature<ExecuteCommandRegistrationOptions>));
      return;
    }
    super.registerFeature(feature);
  }
}

export const nodeProbe: Probe = {
  isFile(p) {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  },
  isExecutable(p) {
    if (process.platform === 'win32') return true;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  makeExecutable(p) {
    try {
      fs.chmodSync(p, 0o755);
      return true;
    } catch {
      return false;
    }
  },
  readText(p) {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  },
};

export interface ServerHooks {
  /** Called on every new client before it starts (register notification handlers here). */
  onClientCreated(client: LanguageClient): void;
  /** Called once the client is running (send secrets, fetch the first state). */
  onRunning(client: LanguageClient): Promise<void>;
  /** Called when the server stops (crash or stop). */
  onStopped(): void;
}

/** Delay before the n-th restart attempt (1-based): 1, 2, 4, 8, 16, 30, 30 … seconds. */
export function backoffSeconds(attempt: number): number {
  return Math.min(30, 2 ** Math.max(0, attempt - 1));
}

/** A server that ran this long before it died is considered healthy: the back-off restarts at 1 s. */
const HEALTHY_RUN_MS = 60_000;

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private stateValue: ServerState = { kind: 'starting' };
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private stopping = false;
  private attempt = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** When the last stop we asked for began (ms). */
  private lastStopAt = 0;
  /**
   * The log the language client writes to: the output channel, except that vscode-languageclient
   * reports every exit of the server process as an error, also the clean exit (code 0) of a
   * stop or restart we asked for; that one is logged as information.
   */
  private get clientLog(): vscode.OutputChannel {
    const output = this.output;
    // The exit is reported when the process is reaped, which can be just after stop() returns.
    const isStopping = () => this.stopping || Date.now() - this.lastStopAt < 5000;
    return new Proxy(output, {
      get(target, prop, receiver) {
        if (prop === 'appendLine') {
          return (line: string) => {
            const clean = /^\[Error - ([^\]]+)\] (Server process exited with code 0\.)$/.exec(line);
            output.appendLine(clean && isStopping() ? `[Info  - ${clean[1]}] ${clean[2]}` : line);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
  private countdown: NodeJS.Timeout | undefined;
  private serverPath: string | undefined;
  private disposed = false;
  private generation = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
    private readonly traceOutput: vscode.OutputChannel,
    private readonly hooks: ServerHooks,
  ) {}

  get state(): ServerState {
    return this.stateValue;
  }

  /** The running client, if any. */
  get running(): LanguageClient | undefined {
    return this.stateValue.kind === 'running' ? this.client : undefined;
  }

  /** The path of the binary in use (for messages). */
  get binary(): string | undefined {
    return this.serverPath;
  }

  private setState(s: ServerState): void {
    this.stateValue = s;
    this.stateEmitter.fire(s);
  }

  private log(message: string): void {
    this.output.appendLine(`[client ${new Date().toISOString()}] ${message}`);
  }

  /** Starts the server (resolving its path again). */
  async start(): Promise<void> {
    if (this.disposed) return;
    this.clearTimers();
    const generation = ++this.generation;
    const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
    const resolution = resolveServer(
      {
        configured: config.get<string>('server.path'),
        extensionPath: this.context.extensionPath,
        platform: process.platform,
        arch: process.arch,
        env: process.env,
        home: os.homedir(),
      },
      nodeProbe,
    );
    if (!resolution.ok) {
      this.serverPath = undefined;
      this.log(`${resolution.message} ${resolution.fix}`);
      this.setState({ kind: 'missing', message: resolution.message });
      void vscode.window
        .showErrorMessage(`Infinity Matrix: ${resolution.message} ${resolution.fix}`, 'Open Settings', 'Show Log')
        .then((choice) => {
          if (choice === 'Open Settings') {
            void vscode.commands.executeCommand('workbench.action.openSettings', 'infinityMatrix.server.path');
          } else if (choice === 'Show Log') {
            this.output.show(true);
          }
        });
      return;
    }
    this.serverPath = resolution.path;
    this.log(`starting ${resolution.path} (${resolution.source})`);
    this.setState({ kind: 'starting' });

    const level = config.get<string>('log.level') || 'info';
    const serverOptions: ServerOptions = {
      command: resolution.path,
      args: ['lsp'], // stdio: no transport option, which would append --stdio
      options: {
        env: { ...process.env, INFINITY_MATRIX_LOG: level },
        cwd: vscode.workspace.workspaceFolders?.[0]?.uri.scheme === 'file' ? vscode.workspace.workspaceFolders[0].uri.fsPath : undefined,
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.clientLog,
      traceOutputChannel: this.traceOutput,
      // Shown in the output channel only; the status bar and the Agents view report state.
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      // Read once at start: changing an index setting restarts the server (extension.ts).
      initializationOptions: initializationOptions((key) => config.get(`index.${key}`)),
      synchronize: {
        // Only the server's keys: the extension's own settings (server.path, log.level, ui.*)
        // would be rejected by the server's configuration parser.
        configurationSection: SERVER_CONFIG_KEYS.map((k) => `${CONFIG_SECTION}.${k}`),
      },
      middleware: {
        workspace: {
          // The server pulls the `infinityMatrix` section: hand it the server's keys only.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return result.map((value: unknown, i: number) =>
              params.items[i]?.section === CONFIG_SECTION ? serverSettings(value) : value,
            );
          },
        },
      },
      errorHandler: {
        error: (_error, _message, count): ErrorHandlerResult => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: (): CloseHandlerResult => {
          if (!this.stopping && generation === this.generation) {
            // Restart ourselves, with back-off, so the status bar can say what happens.
            setImmediate(() => this.crashed(generation, 'the server exited'));
          }
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      initializationFailedHandler: (error) => {
        this.log(`initialize failed: ${String(error)}`);
        return false;
      },
    };
    const client = new InfinityMatrixClient('infinityMatrix', 'Infinity Matrix', serverOptions, clientOptions);
    // This client shows task events itself (the Answers view): the server need not also send
    // finished answers through window/showDocument (docs/lsp-extensions.md).
    client.registerFeature({
      fillClientCapabilities: (capabilities) => {
        const existing = (capabilities.experimental ?? {}) as Record<string, unknown>;
        capabilities.experimental = { ...existing, ...EXPERIMENTAL_CAPABILITIES };
      },
      initialize: () => undefined,
      getState: () => ({ kind: 'static' }),
      clear: () => undefined,
    });
    this.client = client;
    this.hooks.onClientCreated(client);
    try {
      await client.start();
    } catch (e) {
      this.log(`the server failed to start: ${e instanceof Error ? e.message : String(e)}`);
      if (generation === this.generation && !this.stopping) {
        this.crashed(generation, e instanceof Error ? e.message : String(e));
      }
      return;
    }
    if (generation !== this.generation || this.stopping) return;
    if (!client.isRunning()) {
      // start() can resolve after the connection closed during initialize
      this.crashed(generation, 'the server stopped while starting');
      return;
    }
    this.startedAt = Date.now();
    const version = client.initializeResult?.serverInfo?.version;
    this.setState(version ? { kind: 'running', version } : { kind: 'running' });
    this.log(`server running${version ? ` (version ${version})` : ''}`);
    try {
      await this.hooks.onRunning(client);
    } catch (e) {
      this.log(`after start: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private crashed(generation: number, reason: string): void {
    if (this.disposed || this.stopping || generation !== this.generation) return;
    if (this.restartTimer) return; // already scheduled
    this.hooks.onStopped();
    const ranFor = this.startedAt ? Date.now() - this.startedAt : 0;
    this.startedAt = 0;
    if (ranFor >= HEALTHY_RUN_MS) this.attempt = 0;
    this.attempt++;
    let seconds = backoffSeconds(this.attempt);
    this.log(`${reason}; restart attempt ${this.attempt} in ${seconds} s`);
    this.setState({ kind: 'restarting', inSeconds: seconds, attempt: this.attempt, reason });
    if (this.attempt === 5) {
      void vscode.window
        .showWarningMessage('Infinity Matrix: the server keeps stopping; it is restarted with back-off.', 'Show Log')
        .then((c) => c && this.output.show(true));
    }
    this.countdown = setInterval(() => {
      seconds = Math.max(0, seconds - 1);
      if (this.stateValue.kind === 'restarting') {
        this.setState({ ...this.stateValue, inSeconds: seconds });
      }
    }, 1000);
    this.restartTimer = setTimeout(() => {
      this.clearTimers();
      const old = this.client;
      this.client = undefined;
      void (async () => {
        try {
          await old?.dispose(2000);
        } catch {
          // it is dead already
        }
        await this.start();
      })();
    }, seconds * 1000);
  }

  private clearTimers(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.countdown) clearInterval(this.countdown);
    this.restartTimer = undefined;
    this.countdown = undefined;
  }

  /** Stops the server (no automatic restart). */
  async stop(reason?: string): Promise<void> {
    this.clearTimers();
    this.generation++;
    const client = this.client;
    this.client = undefined;
    if (client) {
      this.stopping = true;
      this.lastStopAt = Date.now();
      try {
        if (client.isRunning()) await client.stop(5000);
      } catch (e) {
        this.log(`stop: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        try {
          await client.dispose(1000);
        } catch {
          // ignore
        }
        this.stopping = false;
      }
    }
    this.hooks.onStopped();
    if (!this.disposed) this.setState(reason === undefined ? { kind: 'stopped' } : { kind: 'stopped', reason });
  }

  /** Restarts now, resetting the back-off. */
  async restart(): Promise<void> {
    this.attempt = 0;
    await this.stop('restarting');
    await this.start();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stop();
    this.stateEmitter.dispose();
  }
}
