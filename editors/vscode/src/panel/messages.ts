/**
 * Messages between the answer panel (extension side) and its webview script: one definition
 * for both sides.
 */
import type { Range } from '../lsp_ext';
import type { TableView } from './tables';
import type { TurnView } from './turns';

/** Extension → webview. */
export type ToWebview =
  | { type: 'render'; turns: TurnView[]; empty: string; canAsk: boolean }
  | { type: 'table'; table: TableView; now: number }
  | { type: 'focusInput' };

/** Webview → extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'cancel'; taskId: string }
  | { type: 'retry'; taskId: string }
  | { type: 'followUp'; parentTaskId: string | null; text: string }
  | { type: 'copy'; code: string }
  | { type: 'insert'; code: string }
  | { type: 'apply'; taskId: string; code: string }
  | { type: 'open'; uri: string; range: Range }
  | { type: 'back' };

/** Parses a message from the webview (which is untrusted input). */
export function parseFromWebview(v: unknown): FromWebview | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const m = v as Record<string, unknown>;
  const str = (k: string) => (typeof m[k] === 'string' ? (m[k]) : undefined);
  switch (m.type) {
    case 'ready':
      return { type: 'ready' };
    case 'back':
      return { type: 'back' };
    case 'cancel':
    case 'retry': {
      const taskId = str('taskId');
      return taskId ? { type: m.type, taskId } : undefined;
    }
    case 'followUp': {
      const text = str('text');
      const parent = m.parentTaskId === null ? null : str('parentTaskId');
      return text !== undefined && parent !== undefined ? { type: 'followUp', parentTaskId: parent, text } : undefined;
    }
    case 'copy':
    case 'insert': {
      const code = str('code');
      return code !== undefined ? { type: m.type, code } : undefined;
    }
    case 'apply': {
      const taskId = str('taskId');
      const code = str('code');
      return taskId && code !== undefined ? { type: 'apply', taskId, code } : undefined;
    }
    case 'open': {
      const uri = str('uri');
      const r = m.range as Range | undefined;
      const ok =
        r &&
        typeof r === 'object' &&
        [r.start?.line, r.start?.character, r.end?.line, r.end?.character].every((n) => Number.isInteger(n) && (n) >= 0);
      return uri && ok ? { type: 'open', uri, range: r } : undefined;
    }
    default:
      return undefined;
  }
}
