/**
 * Text helpers without `vscode`: LSP positions (UTF-16 code units, which is what JavaScript
 * strings index) to offsets, and applying a proposed edit to produce the diff preview.
 */
import type { Position, Range } from './lsp_ext';

/** Offsets of each line's start (after `\n`, `\r\n` or a lone `\r`). */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 /* \r */) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    } else if (c === 10 /* \n */) {
      starts.push(i + 1);
    }
  }
  return starts;
}

/**
 * The offset of an LSP position, clamped like the server does: a line past the end goes to
 * the end of the text, a character past the line's end to the end of the line (before its
 * line break), and a position inside a surrogate pair to the start of the pair.
 */
export function offsetAt(text: string, pos: Position, starts: number[] = lineStarts(text)): number {
  if (pos.line < 0) return 0;
  if (pos.line >= starts.length) return text.length;
  const start = starts[pos.line] ?? 0;
  let end = pos.line + 1 < starts.length ? (starts[pos.line + 1] ?? text.length) : text.length;
  // exclude the line break
  if (end > start && text.charCodeAt(end - 1) === 10) end--;
  if (end > start && text.charCodeAt(end - 1) === 13) end--;
  let off = start + Math.max(0, Math.min(pos.character, end - start));
  const c = text.charCodeAt(off);
  if (off > start && c >= 0xdc00 && c <= 0xdfff) {
    const prev = text.charCodeAt(off - 1);
    if (prev >= 0xd800 && prev <= 0xdbff) off--;
  }
  return off;
}

/** Replaces `range` in `text` with `newText`. */
export function applyEdit(text: string, range: Range, newText: string): string {
  const starts = lineStarts(text);
  let a = offsetAt(text, range.start, starts);
  let b = offsetAt(text, range.end, starts);
  if (b < a) [a, b] = [b, a];
  return text.slice(0, a) + newText + text.slice(b);
}

/** The text inside `range`. */
export function textIn(text: string, range: Range): string {
  const starts = lineStarts(text);
  const a = offsetAt(text, range.start, starts);
  const b = offsetAt(text, range.end, starts);
  return text.slice(Math.min(a, b), Math.max(a, b));
}

/** Whether two ranges overlap or touch (a cursor at a range's edge counts as inside). */
export function rangesTouch(a: Range, b: Range): boolean {
  const before = (p: Position, q: Position) => p.line < q.line || (p.line === q.line && p.character < q.character);
  return !before(a.end, b.start) && !before(b.end, a.start);
}
