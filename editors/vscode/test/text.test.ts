import { describe, expect, it } from 'vitest';
import { applyEdit, offsetAt, rangesTouch, textIn } from '../src/text';

const pos = (line: number, character: number) => ({ line, character });
const range = (a: number, b: number, c: number, d: number) => ({ start: pos(a, b), end: pos(c, d) });

describe('UTF-16 positions and edits', () => {
  it('offsets across \\n, \\r\\n and \\r', () => {
    const t = 'ab\r\ncd\ref\ngh';
    expect(offsetAt(t, pos(1, 0))).toBe(4);
    expect(offsetAt(t, pos(2, 1))).toBe(8);
    expect(offsetAt(t, pos(3, 2))).toBe(12);
  });

  it('clamps past the line end, past the last line, and inside a surrogate pair', () => {
    const t = 'a😀b\nxy';
    expect(offsetAt(t, pos(0, 99))).toBe(4); // before the \n
    expect(offsetAt(t, pos(9, 0))).toBe(t.length);
    expect(offsetAt(t, pos(0, 2))).toBe(1); // middle of 😀 → its start
  });

  it('applies a replacement', () => {
    const t = 'fn add(a: i32) -> i32 {\n    a\n}\n';
    expect(applyEdit(t, range(1, 4, 1, 5), 'a + 1')).toBe('fn add(a: i32) -> i32 {\n    a + 1\n}\n');
    expect(applyEdit('xz', range(0, 1, 0, 0), 'y')).toBe('yz'); // reversed range
    expect(textIn(t, range(0, 3, 0, 6))).toBe('add');
  });

  it('ranges touching', () => {
    expect(rangesTouch(range(1, 0, 1, 5), range(1, 5, 1, 5))).toBe(true);
    expect(rangesTouch(range(1, 0, 1, 5), range(2, 0, 2, 1))).toBe(false);
  });
});
