import { describe, expect, it } from 'vitest';
import type { AuditEntry, ContextResult } from '../src/lsp_ext';
import { auditTable, contextTable, filterRows } from '../src/panel/tables';

const r = (a: number, b: number) => ({ start: { line: a, character: 0 }, end: { line: b, character: 0 } });

describe('Show Context as a table', () => {
  it('one row per item: kind, tokens, where, why; rows open their range and carry the source', () => {
    const result: ContextResult = {
      items: [
        { kind: 'enclosingSymbol', uri: 'file:///ws/src/calc.py', range: r(3, 6), text: 'def add(a, b):\n    return a + b\n', tokens: 12, reason: 'encloses the cursor' },
        { kind: 'definition', uri: 'file:///ws/src/money.py', range: r(10, 11), text: 'class Money:\n', tokens: 5, reason: 'defines Money (imported)' },
      ],
      totalTokens: 17,
      budgetTokens: 4096,
      rendered: '',
      indexComplete: true,
    };
    const t = contextTable(result, { uri: 'file:///ws/src/calc.py', line: 4, character: 2 });
    expect(t.title).toBe('Context snapshot — calc.py:5:3');
    expect(t.subtitle).toBe('2 items, 17 of 4096 tokens (0% of the budget)');
    expect(t.rows[1]?.cells).toEqual(['2', 'definition', '5', 'money.py:11', 'defines Money (imported)']);
    expect(t.rows[0]?.open).toEqual({ uri: 'file:///ws/src/calc.py', range: r(3, 6) });
    expect(t.rows[0]?.detail).toContain('def add');
    expect(filterRows(t, ['definition'], 0).map((x) => x.cells[0])).toEqual(['2']);
  });
});

describe('Show Audit as a table', () => {
  const entries: AuditEntry[] = [
    { at: 1_000, kind: 'task', taskId: 'a-1', agent: 'explain', summary: 'created', details: {} },
    { at: 5_000_000, kind: 'approval', taskId: 'a-2', agent: 'fix', summary: 'accepted by user', details: {} },
    { at: 5_100_000, kind: 'transition', taskId: 'a-2', agent: 'fix', summary: 'running → succeeded', details: {} },
  ];
  it('newest first, filterable by agent, kind and time', () => {
    const t = auditTable(entries);
    expect(t.rows.map((x) => x.cells[2])).toEqual(['#2', '#2', '#1']);
    expect(t.filters.map((f) => f.label)).toEqual(['agent', 'kind', 'time']);
    expect(t.filters[0]?.options).toEqual(['explain', 'fix']);
    expect(filterRows(t, ['fix', '', ''], 5_200_000)).toHaveLength(2);
    expect(filterRows(t, ['fix', 'approval', ''], 5_200_000)).toHaveLength(1);
    expect(filterRows(t, ['', '', 'last 15 minutes'], 5_200_000)).toHaveLength(2);
    expect(filterRows(t, ['explain', '', 'last hour'], 5_200_000)).toHaveLength(0);
  });
});
