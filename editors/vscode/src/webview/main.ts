/**
 * The answer panel's webview script (runs in the browser sandbox of the webview): renders the
 * turns the extension sends as a conversation, answers as sanitised Markdown with highlighted
 * code blocks, and posts the user's actions back. No remote resources; no inline handlers.
 */
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import typescript from 'highlight.js/lib/languages/typescript';
import yaml from 'highlight.js/lib/languages/yaml';
import ini from 'highlight.js/lib/languages/ini';
import MarkdownIt from 'markdown-it';
import type { FromWebview, ToWebview } from '../panel/messages';
import { filterRows, type TableView } from '../panel/tables';
import type { TurnView } from '../panel/turns';

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void };
const vscode = acquireVsCodeApi();

for (const [name, lang] of Object.entries({ bash, c, cpp, diff, go, java, javascript, json, python, rust, typescript, yaml, ini })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(['sh', 'shell', 'console'], { languageName: 'bash' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['js', 'jsx'], { languageName: 'javascript' });
hljs.registerAliases(['toml'], { languageName: 'ini' });
hljs.registerAliases(['c++', 'cc', 'h', 'hpp'], { languageName: 'cpp' });

/** Code blocks of the current render, by index (the buttons carry the index). */
let codeBlocks: { taskId: string; code: string }[] = [];
let renderingTask = '';

const md = new MarkdownIt({ html: false, linkify: false, breaks: false });
md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  const code = token.content;
  const lang = token.info.trim().split(/\s+/)[0] ?? '';
  const n = codeBlocks.push({ taskId: renderingTask, code }) - 1;
  let body: string;
  if (lang && hljs.getLanguage(lang)) {
    body = hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  } else {
    body = md.utils.escapeHtml(code);
  }
  const label = lang ? `<span class="code-lang">${md.utils.escapeHtml(lang)}</span>` : '';
  return (
    `<div class="code">` +
    `<div class="code-bar">${label}` +
    `<button type="button" class="code-act" data-act="copy" data-code="${n}" title="Copy the code">Copy</button>` +
    `<button type="button" class="code-act" data-act="insert" data-code="${n}" title="Insert the code at the cursor of the last active editor">Insert at cursor</button>` +
    `<button type="button" class="code-act" data-act="apply" data-code="${n}" title="Propose the code as an edit of the target; your approval policy decides">Apply as edit</button>` +
    `</div><pre><code class="hljs">${body}</code></pre></div>`
  );
};

function renderMarkdown(taskId: string, text: string): string {
  renderingTask = taskId;
  return DOMPurify.sanitize(md.render(text), { USE_PROFILES: { html: true } });
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(label: string, act: string, taskId: string, title: string): HTMLButtonElement {
  const b = el('button', `act act-${act}`, label);
  b.type = 'button';
  b.dataset.act = act;
  b.dataset.task = taskId;
  b.title = title;
  return b;
}

const root = document.getElementById('turns') as HTMLElement;
const tableEl = document.getElementById('table') as HTMLElement;
let currentTable: { table: TableView; now: number; chosen: string[] } | undefined;
const emptyEl = document.getElementById('empty') as HTMLElement;
const form = document.getElementById('ask') as HTMLFormElement;
const input = document.getElementById('question') as HTMLTextAreaElement;
let lastTurns: TurnView[] = [];

function turnElement(t: TurnView): HTMLElement {
  const turn = el('article', `turn phase-${t.phase}`);
  turn.dataset.task = t.id;
  turn.setAttribute('aria-label', `${t.label}: ${t.stateText}`);
  const q = el('div', 'question');
  q.append(el('span', 'who', 'You'), el('p', 'question-text', t.question));
  if (t.chips.length) {
    const chips = el('div', 'chips');
    chips.setAttribute('aria-label', 'What was sent');
    t.chips.forEach((c, i) => {
      const b = el('button', 'chip', c.label);
      b.type = 'button';
      b.title = c.title;
      b.dataset.act = 'open';
      b.dataset.task = t.id;
      b.dataset.chip = String(i);
      chips.append(b);
    });
    q.append(chips);
  }
  turn.append(q);

  const head = el('header', 'answer-head');
  head.append(el('span', 'label', t.label), el('span', `state state-${t.phase}`, t.stateText));
  for (const f of t.facts) head.append(el('span', 'fact', f));
  const acts = el('span', 'acts');
  if (t.canCancel) acts.append(button('Cancel', 'cancel', t.id, 'Cancel this task'));
  if (t.canRetry) acts.append(button('Retry', 'retry', t.id, 'Run the same request again'));
  head.append(acts);
  turn.append(head);

  const answer = el('div', 'answer');
  answer.setAttribute('aria-live', t.phase === 'streaming' ? 'polite' : 'off');
  for (const n of t.notices) answer.append(el('p', 'notice', n));
  if (t.error) answer.append(el('p', 'error', t.error));
  if (t.text) {
    const body = el('div', 'markdown');
    body.innerHTML = renderMarkdown(t.id, t.text);
    answer.append(body);
  } else if (t.phase === 'waiting') {
    answer.append(el('p', 'placeholder', 'Waiting in the queue…'));
  } else if (t.phase === 'streaming') {
    answer.append(el('p', 'placeholder', 'Waiting for the model…'));
  }
  turn.append(answer);
  return turn;
}

/** Show Context / Show Audit: a real table with filters; rows open their range. */
function renderTable(): void {
  if (!currentTable) return;
  const { table, now, chosen } = currentTable;
  const head = el('div', 'table-head');
  const back = el('button', 'act', 'Back to answers');
  back.type = 'button';
  back.dataset.act = 'back';
  head.append(el('h2', 'table-title', table.title), back);
  const sub = el('p', 'table-sub', table.subtitle);
  const filters = el('div', 'filters');
  table.filters.forEach((f, i) => {
    const label = el('label', 'filter');
    label.append(`${f.label} `);
    const select = el('select');
    select.dataset.filter = String(i);
    select.append(new Option('any', ''));
    for (const o of f.options) select.append(new Option(o, o, false, chosen[i] === o));
    label.append(select);
    filters.append(label);
  });
  const rows = filterRows(table, chosen, now);
  const t = el('table', 'data');
  const thead = el('thead');
  const hr = el('tr');
  table.columns.forEach((c, i) => {
    const th = el('th', table.numeric.includes(i) ? 'num' : i === table.wide ? 'wide' : undefined, c);
    th.scope = 'col';
    hr.append(th);
  });
  thead.append(hr);
  const tbody = el('tbody');
  rows.forEach((row) => {
    const tr = el('tr');
    row.cells.forEach((cell, i) => tr.append(el('td', table.numeric.includes(i) ? 'num' : i === table.wide ? 'wide' : undefined, cell)));
    if (row.open) {
      tr.tabIndex = 0;
      tr.className = 'openable';
      tr.dataset.row = String(table.rows.indexOf(row));
      tr.title = 'Open this range';
    }
    tbody.append(tr);
    if (row.detail !== undefined) {
      const dr = el('tr', 'detail');
      const td = el('td');
      td.colSpan = table.columns.length;
      const details = el('details');
      details.append(el('summary', undefined, 'source'), el('pre', undefined, row.detail));
      td.append(details);
      dr.append(td);
      tbody.append(dr);
    }
  });
  t.append(thead, tbody);
  const scroll = el('div', 'table-scroll');
  scroll.append(t);
  const count = el('p', 'table-sub', `${rows.length} of ${table.rows.length} shown`);
  tableEl.replaceChildren(head, sub, filters, count, scroll);
}

function render(turns: TurnView[], empty: string, canAsk: boolean): void {
  currentTable = undefined;
  tableEl.hidden = true;
  root.hidden = false;
  codeBlocks = [];
  lastTurns = turns;
  const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 24;
  root.replaceChildren(...turns.map(turnElement));
  emptyEl.textContent = empty;
  emptyEl.hidden = turns.length > 0;
  const last = turns.at(-1);
  const followUp = !!last?.canFollowUp;
  input.placeholder = followUp ? `Follow up on ${last?.label} (Ctrl+Enter to send)` : 'Ask about the code at the cursor (Ctrl+Enter to send)';
  form.hidden = !canAsk;
  if (atBottom) window.scrollTo(0, document.body.scrollHeight);
}

document.addEventListener('click', (ev) => {
  const target = (ev.target as HTMLElement).closest('button');
  if (!target) return;
  const act = target.dataset.act;
  const taskId = target.dataset.task ?? '';
  if (act === 'copy' || act === 'insert' || act === 'apply') {
    const block = codeBlocks[Number(target.dataset.code)];
    if (!block) return;
    if (act === 'apply') vscode.postMessage({ type: 'apply', taskId: block.taskId, code: block.code });
    else vscode.postMessage({ type: act, code: block.code });
    if (act === 'copy') {
      target.textContent = 'Copied';
      setTimeout(() => (target.textContent = 'Copy'), 1500);
    }
  } else if (act === 'cancel' || act === 'retry') {
    vscode.postMessage({ type: act, taskId });
  } else if (act === 'open') {
    const chip = lastTurns.find((t) => t.id === taskId)?.chips[Number(target.dataset.chip)];
    if (chip) vscode.postMessage({ type: 'open', uri: chip.uri, range: chip.range });
  } else if (act === 'back') {
    vscode.postMessage({ type: 'back' });
  }
});

function openRow(tr: HTMLElement): void {
  const row = currentTable?.table.rows[Number(tr.dataset.row)];
  if (row?.open) vscode.postMessage({ type: 'open', uri: row.open.uri, range: row.open.range });
}

tableEl.addEventListener('click', (ev) => {
  const tr = (ev.target as HTMLElement).closest('tr.openable');
  if (tr instanceof HTMLElement) openRow(tr);
});
tableEl.addEventListener('keydown', (ev) => {
  const tr = (ev.target as HTMLElement).closest('tr.openable');
  if (tr instanceof HTMLElement && (ev.key === 'Enter' || ev.key === ' ')) {
    ev.preventDefault();
    openRow(tr);
  }
});
tableEl.addEventListener('change', (ev) => {
  const select = ev.target as HTMLSelectElement;
  if (!currentTable || select.dataset.filter === undefined) return;
  currentTable.chosen[Number(select.dataset.filter)] = select.value;
  renderTable();
});

function send(): void {
  const text = input.value.trim();
  if (!text) return;
  const last = lastTurns.at(-1);
  vscode.postMessage({ type: 'followUp', parentTaskId: last?.canFollowUp ? last.id : null, text });
  input.value = '';
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  send();
});
input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    send();
  }
});

window.addEventListener('message', (ev: MessageEvent<ToWebview>) => {
  const m = ev.data;
  if (m.type === 'render') render(m.turns, m.empty, m.canAsk);
  else if (m.type === 'table') {
    currentTable = { table: m.table, now: m.now, chosen: m.table.filters.map(() => '') };
    root.hidden = true;
    emptyEl.hidden = true;
    form.hidden = true;
    tableEl.hidden = false;
    renderTable();
  }
  else if (m.type === 'focusInput') input.focus();
});

vscode.postMessage({ type: 'ready' });
