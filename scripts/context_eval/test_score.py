"""Unit tests of the benchmark's scoring rules (score.py): mapping an item's text to file
lines with and without `elided` ranges, and the verbatim header check.
Run: python3 scripts/context_eval/test_score.py
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from score import LINE_MISSING, NOT_VERBATIM, check_item, item_lines  # noqa: E402

FILE = [
    "import os",                      # 0
    "",                               # 1
    "class A:",                       # 2
    "    def f(",                     # 3
    "        self, x,",               # 4
    "    ):",                         # 5
    "        y = 1",                  # 6
    "        z = 2",                  # 7
    "        return x + y + z",       # 8
    "",                               # 9
    "    def g(self):",               # 10
    "        return 1",               # 11
]


def item(start, end, text, start_col=0, end_col=0, elided=None):
    it = {"kind": "definition", "uri": "file:///x.py", "text": text,
          "range": {"start": {"line": start, "character": start_col},
                    "end": {"line": end, "character": end_col}}}
    if elided is not None:
        it["elided"] = elided
    return it


class MappingTest(unittest.TestCase):
    def test_plain_lines_from_the_range_start(self):
        got = item_lines(item(3, 8, "\n".join(FILE[3:9])), FILE)
        self.assertEqual(sorted(got), list(range(3, 9)))
        self.assertEqual(got[5][0], "    ):")

    def test_range_starting_after_the_indentation(self):
        text = "def f(\n" + "\n".join(FILE[4:9])
        it = item(3, 8, text, start_col=4, end_col=len(FILE[8]))
        self.assertEqual(check_item(it, [3, 4, 5], FILE), (None, []))

    def test_elided_ranges_skip_their_lines(self):
        text = "\n".join(FILE[3:6] + ["        ... 2 lines ...", FILE[8]])
        got = item_lines(item(3, 8, text, elided=[[6, 7]]), FILE)
        self.assertEqual(sorted(got), [3, 4, 5, 8])
        self.assertEqual(got[8][0], FILE[8])

    def test_elision_at_the_start_and_two_elisions(self):
        text = "\n".join(["# ...", FILE[2], "    # ...", FILE[5], "    # ...", FILE[10]])
        got = item_lines(item(0, 10, text, elided=[[0, 1], [3, 4], [6, 9]]), FILE)
        self.assertEqual(sorted(got), [2, 5, 10])
        self.assertEqual(check_item(item(0, 10, text, elided=[[0, 1], [3, 4], [6, 9]]),
                                    [3, 4, 5], FILE)[0], LINE_MISSING)

    def test_collapsed_signature_is_not_verbatim(self):
        it = item(3, 8, "def f( self, x, )", start_col=4)
        why, lines = check_item(it, [3, 4, 5], FILE)
        self.assertEqual(why, NOT_VERBATIM)
        self.assertEqual(lines, [3])

    def test_header_line_past_the_text(self):
        it = item(3, 8, "def f(", start_col=4)
        self.assertEqual(check_item(it, [3, 4, 5], FILE), (LINE_MISSING, [4, 5]))

    def test_crlf_is_ignored(self):
        it = item(10, 11, FILE[10] + "\r\n" + FILE[11] + "\r\n")
        self.assertEqual(check_item(it, [10], FILE), (None, []))


if __name__ == "__main__":
    unittest.main()
