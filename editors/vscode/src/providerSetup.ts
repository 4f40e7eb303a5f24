/**
 * Configure Provider: the choices offered (kinds with their defaults) and how a choice becomes
 * user settings. No `vscode` import: the tests run it in plain node.
 */

export interface ProviderChoice {
  /** Shown in the picker. */
  label: string;
  detail: string;
  kind: 'embedded' | 'ollama' | 'openai' | 'anthropic' | 'gemini' | 'vertex';
  /** Default provider name in settings. */
  name: string;
  baseUrl?: string;
  model?: string;
  /** The environment variable name that holds the key (stored in secret storage). */
  keyEnv?: string;
  /** Asks for a URL / a model. */
  askUrl: boolean;
  askModel: boolean;
}

export const PROVIDER_CHOICES: ProviderChoice[] = [
  {
    label: 'Local model (built in)',
    detail: 'The small model the server runs itself: no account, no network. Install it once with `infinity-matrix model install`.',
    kind: 'embedded',
    name: 'embedded',
    askUrl: false,
    askModel: false,
  },
  {
    label: 'Ollama',
    detail: 'A local Ollama (http://127.0.0.1:11434) and a model you pulled.',
    kind: 'ollama',
    name: 'ollama',
    baseUrl: 'http://127.0.0.1:11434',
    model: 'llama3.2',
    askUrl: true,
    askModel: true,
  },
  {
    label: 'OpenAI-compatible',
    detail: 'OpenAI, or any compatible endpoint: llama.cpp server, vLLM, LM Studio, OpenRouter…',
    kind: 'openai',
    name: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    model: 'gpt-4o-mini',
    keyEnv: 'OPENAI_API_KEY',
    askUrl: true,
    askModel: true,
  },
  {
    label: 'Anthropic',
    detail: 'Claude models with an Anthropic API key.',
    kind: 'anthropic',
    name: 'claude',
    model: 'claude-sonnet-4-5',
    keyEnv: 'ANTHROPIC_API_KEY',
    askUrl: false,
    askModel: true,
  },
  {
    label: 'Gemini',
    detail: 'Google Gemini with an AI Studio API key.',
    kind: 'gemini',
    name: 'gemini',
    model: 'gemini-2.5-flash',
    keyEnv: 'GEMINI_API_KEY',
    askUrl: false,
    askModel: true,
  },
  {
    label: 'Vertex AI',
    detail: 'Gemini on Google Cloud Vertex AI (project and location; the key from `gcloud auth print-access-token`).',
    kind: 'vertex',
    name: 'vertex',
    model: 'gemini-2.5-flash',
    askUrl: false,
    askModel: true,
  },
];

/** What the user entered for one provider. */
export interface ProviderAnswers {
  name: string;
  baseUrl?: string;
  model?: string;
  keyEnv?: string;
  project?: string;
  location?: string;
}

/** The `infinityMatrix.providers` entry for a choice and the answers. */
export function providerEntry(choice: ProviderChoice, a: ProviderAnswers): Record<string, unknown> {
  const entry: Record<string, unknown> = { kind: choice.kind };
  if (a.baseUrl) entry.base_url = a.baseUrl;
  if (a.model) entry.model = a.model;
  if (a.keyEnv) entry.api_key_env = a.keyEnv;
  if (choice.kind === 'vertex') {
    if (a.project) entry.project = a.project;
    if (a.location) entry.location = a.location;
    entry.token_command = 'gcloud auth print-access-token';
  }
  return entry;
}

/**
 * The new values of `infinityMatrix.providers` and `infinityMatrix.defaults.providers`: the
 * provider added (or replaced) and put first in the default chain, the others kept after it.
 */
export function withProvider(
  providers: Record<string, unknown> | undefined,
  chain: string[] | null | undefined,
  name: string,
  entry: Record<string, unknown>,
): { providers: Record<string, unknown>; chain: string[] } {
  const next = { ...(providers ?? {}), [name]: entry };
  const rest = (chain ?? []).filter((n) => n !== name && n in next);
  return { providers: next, chain: [name, ...rest] };
}

/** A provider name the configuration accepts (a TOML/JSON key we also show in the UI). */
export function isProviderName(s: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(s);
}
