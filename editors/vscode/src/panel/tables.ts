/**
 * Show Context and Show Audit as tables in the answer panel: what the webview shows (columns,
 * rows, filters), built from the server's results. No `vscode` import.
 */
import { basename, shortTaskId } from '../format';
import type { AuditEntry, ContextResult, Range } from '../lsp_ext';

export interface TableRow {
  cells: string[];
  /** Opens this range when the row is clicked. */
  open?: { uri: string; range: Range };
  /** Shown under the row when it is expanded (a context item's source). */
  detail?: string;
  /** Time of the row (ms since the epoch), for the time filter. */
  at?: number;
}

export interface TableFilter {
  /** The column it filters on (exact value), or `time` for the time filter. */
  column: number | 'time';
  label: string;
  options: string[];
}

export interface TableView {
  kind: 'context' | 'audit';
  title: string;
  subtitle: string;
  columns: string[];
  /** Columns holding numbers (right-aligned). */
  numeric: number[];
  /** The column that wraps (the others keep to one line; the table scrolls sideways). */
  wide: number;
  rows: TableRow[];
  filters: TableFilter[];
}

/** The time filter's choices, and how far back each reaches. */
export const TIME_OPTIONS: Record<string, number> = {
  'last 15 minutes': 15 * 60_000,
  'last hour': 60 * 60_000,
  'last 24 hours': 24 * 60 * 60_000,
};

function lines(range: Range): string {
  const a = range.start.line + 1;
  const b = range.end.character === 0 && range.end.line > range.start.line ? range.end.line : range.end.line + 1;
  return a === b ? `${a}` : `${a}–${b}`;
}

function distinct(values: string[]): string[] {
  return [...new Set(values.filter((v) => v !== ''))].sort();
}

export function contextTable(result: ContextResult, where: { uri: string; line: number; character: number }): TableView {
  const pct = Math.round((100 * result.totalTokens) / Math.max(1, result.budgetTokens));
  const rows: TableRow[] = result.items.map((item, i) => ({
    cells: [String(i + 1), item.kind, String(item.tokens), `${basename(item.uri)}:${lines(item.range)}`, item.reason],
    open: { uri: item.uri, range: item.range },
    detail: item.text,
  }));
  return {
    kind: 'context',
    title: `Context snapshot — ${basename(where.uri)}:${where.line + 1}:${where.character + 1}`,
    subtitle:
      `${result.items.length} item${result.items.length === 1 ? '' : 's'}, ${result.totalTokens} of ${result.budgetTokens} tokens (${pct}% of the budget)` +
      (result.indexComplete === false ? ' — the workspace index is still being built' : ''),
    columns: ['#', 'kind', 'tokens', 'where', 'why'],
    numeric: [0, 2],
    wide: 4,
    rows,
    filters: [{ column: 1, label: 'kind', options: distinct(result.items.map((i) => i.kind)) }],
  };
}

export function auditTable(entries: AuditEntry[]): TableView {
  const sorted = [...entries].sort((a, b) => b.at - a.at);
  const rows: TableRow[] = sorted.map((e) => ({
    cells: [new Date(e.at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ''), e.kind, shortTaskId(e.taskId), e.agent ?? '', e.summary],
    at: e.at,
  }));
  return {
    kind: 'audit',
    title: 'Audit log',
    subtitle: `${sorted.length} most recent entries, newest first`,
    columns: ['time (UTC)', 'kind', 'task', 'agent', 'summary'],
    numeric: [],
    wide: 4,
    rows,
    filters: [
      { column: 3, label: 'agent', options: distinct(sorted.map((e) => e.agent ?? '')) },
      { column: 1, label: 'kind', options: distinct(sorted.map((e) => e.kind)) },
      { column: 'time', label: 'time', options: Object.keys(TIME_OPTIONS) },
    ],
  };
}

/** The rows a filter selection keeps (`''` = any), as the webview applies it. */
export function filterRows(table: TableView, chosen: (string | undefined)[], now: number): TableRow[] {
  return table.rows.filter((row) =>
    table.filters.every((f, i) => {
      const want = chosen[i];
      if (!want) return true;
      if (f.column === 'time') {
        const reach = TIME_OPTIONS[want];
        return reach === undefined || (row.at !== undefined && now - row.at <= reach);
      }
      return row.cells[f.column] === want;
    }),
  );
}
