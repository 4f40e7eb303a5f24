/**
 * API keys in VS Code's SecretStorage, sent to the server with `infinityMatrix/setSecret`
 * at start and whenever they change. Keys are never written to settings or logs.
 */
import type * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { Methods, type SetSecretParams } from './lsp_ext';

const NAMES_KEY = 'infinityMatrix.secretNames';
const PREFIX = 'infinityMatrix.secret.';

/** A valid environment-variable-like name: what providers name in `api_key_env`. */
export function isSecretName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

export class Secrets implements vscode.Disposable {
  private readonly sub: vscode.Disposable;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly client: () => LanguageClient | undefined,
    private readonly log: (message: string) => void,
  ) {
    this.sub = context.secrets.onDidChange(async (e) => {
      if (!e.key.startsWith(PREFIX)) return;
      const name = e.key.slice(PREFIX.length);
      const value = (await context.secrets.get(e.key)) ?? '';
      await this.send(name, value);
    });
  }

  async names(): Promise<string[]> {
    const raw = await this.context.secrets.get(NAMES_KEY);
    try {
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      return Array.isArray(parsed) ? parsed.filter((n): n is string => typeof n === 'string') : [];
    } catch {
      return [];
    }
  }

  async set(name: string, value: string): Promise<void> {
    const names = new Set(await this.names());
    names.add(name);
    await this.context.secrets.store(NAMES_KEY, JSON.stringify([...names].sort()));
    await this.context.secrets.store(PREFIX + name, value);
    await this.send(name, value); // onDidChange may not fire in this window
  }

  async remove(name: string): Promise<void> {
    const names = new Set(await this.names());
    names.delete(name);
    await this.context.secrets.store(NAMES_KEY, JSON.stringify([...names].sort()));
    await this.context.secrets.delete(PREFIX + name);
    await this.send(name, '');
  }

  /** Sends every stored key (at server start). */
  async sendAll(): Promise<void> {
    for (const name of await this.names()) {
      const value = await this.context.secrets.get(PREFIX + name);
      if (value !== undefined) await this.send(name, value);
    }
  }

  private async send(name: string, value: string): Promise<void> {
    const client = this.client();
    if (!client) return;
    try {
      const params: SetSecretParams = { name, value };
      await client.sendRequest(Methods.setSecret, params);
      this.log(`API key ${name} ${value ? 'sent to' : 'cleared on'} the server`);
    } catch (e) {
      this.log(`setSecret ${name} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  dispose(): void {
    this.sub.dispose();
  }
}
