//! A plain-text table: left-aligned columns padded to the widest cell.

use std::fmt;

use super::format::sanitize;

/// Spaces between two columns.
const GAP: &str = "  ";

/// Rows of text under a header row, printed with every column left-aligned and padded to its
/// widest cell (width counted in characters), two spaces between columns, and no trailing
/// whitespace. Cells are sanitized as they are added, so text from other nodes cannot break
/// the layout or drive the terminal.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers. With no headers, no header row is printed (a
    /// plain aligned block, e.g. for key/value pairs).
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            headers: headers.into_iter().map(|h| sanitize(h.as_ref())).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row. Rows may be shorter or longer than the header; missing cells are
    /// empty.
    pub fn push<I, S>(&mut self, row: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rows
            .push(row.into_iter().map(|c| sanitize(c.as_ref())).collect());
    }

    /// The header row (when there is one) followed by the rows.
    fn lines(&self) -> impl Iterator<Item = &Vec<String>> {
        let header = (!self.headers.is_empty()).then_some(&self.headers);
        header.into_iter().chain(&self.rows)
    }

    /// The width of each column: its widest cell, in characters.
    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = Vec::new();
        for line in self.lines() {
            if widths.len() < line.len() {
                widths.resize(line.len(), 0);
            }
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }
}

impl fmt::Display for Table {
    /// Every line ends with a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        let mut line = String::new();
        for cells in self.lines() {
            line.clear();
            for (i, width) in widths.iter().enumerate() {
                if i > 0 {
                    line.push_str(GAP);
                }
                let cell = cells.get(i).map_or("", String::as_str);
                line.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character (not byte) offset at which `needle` starts in `line`.
    fn char_offset(line: &str, needle: &str) -> usize {
        let byte = line.find(needle).expect("needle in line");
        line[..byte].chars().count()
    }

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(["PEER", "ROLE", "RTT"]);
        t.push(["12D3Koo…abcd", "super", "0.42 ms"]);
        t.push(["x", "peer", "-"]);
        t.push(["a-much-longer-first-cell", "unknown", "12.00 ms"]);
        let out = t.to_string();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        let second = ["ROLE", "super", "peer", "unknown"];
        let offsets: Vec<usize> = lines
            .iter()
            .zip(second)
            .map(|(l, s)| char_offset(l, s))
            .collect();
        assert!(
            offsets.iter().all(|&o| o == offsets[0]),
            "{offsets:?}\n{out}"
        );
        assert_eq!(offsets[0], "a-much-longer-first-cell".len() + 2);
        let third = ["RTT", "0.42 ms", "-", "12.00 ms"];
        let offsets: Vec<usize> = lines
            .iter()
            .zip(third)
            .map(|(l, s)| char_offset(l, s))
            .collect();
        assert!(
            offsets.iter().all(|&o| o == offsets[0]),
            "{offsets:?}\n{out}"
        );
        assert!(lines[0].starts_with("PEER "));
    }

    #[test]
    fn no_trailing_whitespace() {
        let mut t = Table::new(["A", "B", "C"]);
        t.push(["long value", "", ""]);
        t.push(["x"]);
        t.push(["1", "2", "3", "extra"]);
        let out = t.to_string();
        assert!(out.ends_with('\n'));
        for line in out.lines() {
            assert_eq!(line, line.trim_end(), "trailing space in {line:?}");
        }
        assert_eq!(out.lines().nth(2), Some("x"));
        assert!(out.lines().nth(3).is_some_and(|l| l.ends_with("3  extra")));
    }

    #[test]
    fn headerless_and_sanitized() {
        let mut t = Table::new(Vec::<String>::new());
        t.push(["key:", "value"]);
        t.push(["longer key:", "evil\x1b[31m\nline"]);
        let out = t.to_string();
        assert_eq!(out.lines().count(), 2);
        assert!(out.starts_with("key:         value\n"));
        assert!(!out.contains('\x1b'));
    }
}
