//! Position conversion between the client's encoding (UTF-16 or UTF-8 columns), rope chars and bytes.

use ropey::{Rope, RopeSlice};
use serde::{Deserialize, Serialize};

/// How the client counts columns. LSP's default is UTF-16; UTF-8 when negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
}

/// A position as the client sends it: zero-based line and column in the negotiated encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub fn new(line: u32, character: u32) -> Position {
        Position { line, character }
    }
}

/// A range in client coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

impl Range {
    pub fn new(start: Position, end: Position) -> Range {
        Range { start, end }
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("line {line} is past the end of the document ({line_count} lines)")]
    LineOutOfRange { line: u32, line_count: usize },
}

/// Number of lines as LSP counts them (a trailing line break opens one more, empty line).
pub fn line_count(rope: &Rope) -> usize {
    rope.len_lines()
}

/// The line's content without its line break.
fn line_without_break(line: RopeSlice<'_>) -> RopeSlice<'_> {
    let mut end = line.len_chars();
    while end > 0 {
        match line.get_char(end - 1) {
            Some('\n') | Some('\r') => end -= 1,
            _ => break,
        }
    }
    line.slice(..end)
}

/// Converts a client position to a rope char index.
///
/// A column past the line's end is clamped to the end of the line (before its break); a column
/// inside a UTF-16 surrogate pair or inside a UTF-8 sequence is clamped to the start of that
/// character. Real editors send both. A line past the end of the document is an error.
pub fn position_to_char(
    rope: &Rope,
    pos: Position,
    encoding: PositionEncoding,
) -> Result<usize, PositionError> {
    let line_idx = pos.line as usize;
    if line_idx >= rope.len_lines() {
        return Err(PositionError::LineOutOfRange {
            line: pos.line,
            line_count: rope.len_lines(),
        });
    }
    let line_start = rope.line_to_char(line_idx);
    let line = line_without_break(rope.line(line_idx));
    let col = pos.character as usize;
    let char_in_line = match encoding {
        PositionEncoding::Utf16 => {
            if col >= line.len_utf16_cu() {
                line.len_chars()
            } else {
                line.utf16_cu_to_char(col)
            }
        }
        PositionEncoding::Utf8 => {
            if col >= line.len_bytes() {
                line.len_chars()
            } else {
                line.byte_to_char(col)
            }
        }
    };
    Ok(line_start + char_in_line)
}

/// Converts a rope char index (clamped to the document) to a client position.
pub fn char_to_position(rope: &Rope, char_idx: usize, encoding: PositionEncoding) -> Position {
    let char_idx = char_idx.min(rope.len_chars());
    let line_idx = rope.char_to_line(char_idx);
    let line_start = rope.line_to_char(line_idx);
    let character = match encoding {
        PositionEncoding::Utf16 => {
            rope.char_to_utf16_cu(char_idx) - rope.char_to_utf16_cu(line_start)
        }
        PositionEncoding::Utf8 => rope.char_to_byte(char_idx) - rope.char_to_byte(line_start),
    };
    Position {
        line: line_idx as u32,
        character: character as u32,
    }
}

/// Converts a byte offset (clamped, and rounded down to a char boundary) to a client position.
pub fn byte_to_position(rope: &Rope, byte: usize, encoding: PositionEncoding) -> Position {
    let byte = byte.min(rope.len_bytes());
    char_to_position(rope, rope.byte_to_char(byte), encoding)
}

/// Converts a byte column within `line_text` (the line's text from its start) to the client's encoding.
/// Used for files that are not open, where only a `&str` is at hand.
pub fn column_in_line(line_prefix: &str, encoding: PositionEncoding) -> u32 {
    match encoding {
        PositionEncoding::Utf8 => line_prefix.len() as u32,
        PositionEncoding::Utf16 => line_prefix.encode_utf16().count() as u32,
    }
}

/// The tree-sitter point of a byte offset in a rope.
pub fn byte_to_point(rope: &Rope, byte: usize) -> tree_sitter::Point {
    let byte = byte.min(rope.len_bytes());
    let line = rope.byte_to_line(byte);
    tree_sitter::Point {
        row: line,
        column: byte - rope.line_to_byte(line),
    }
}
