//! Byte offsets in TOML text -> line, column and dotted key path, for error messages.

/// A 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation {
    pub line: usize,
    pub column: usize,
}

impl SourceLocation {
    /// Where byte `offset` of `text` is.
    pub fn of(text: &str, offset: usize) -> SourceLocation {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = text[line_start..offset].chars().count() + 1;
        SourceLocation { line, column }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted key path (`engine[1].tls.ca`) of the key or value at `offset`.
///
/// A light scan rather than a full parse: the text already parsed as TOML (or
/// failed at `offset`), so headers and `key =` lines are enough to name the place.
pub fn key_path_at(text: &str, offset: usize) -> String {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let mut table: Vec<String> = Vec::new();
    let mut array_counts: std::collections::HashMap<String, usize> = Default::default();
    // The last top-level `key =` line seen in the current table, for values on continuation lines.
    let mut last_key: Option<String> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        let end = pos + line.len();
        pos = end;
        let trimmed = line.trim();
        let on_this_line = offset >= start && (offset < end || end == text.len());
        if let Some(header) = parse_header(trimmed) {
            let (name, is_array) = header;
            let mut parts: Vec<String> = split_dotted(&name);
            if is_array {
                let n = array_counts.entry(name.clone()).or_insert(0);
                if let Some(last) = parts.last_mut() {
                    last.push_str(&format!("[{n}]"));
                }
                *n += 1;
            }
            table = parts;
            last_key = None;
            if on_this_line {
                return table.join(".");
            }
            continue;
        }
        let rel = offset.saturating_sub(start).min(line.len());
        let in_line = inline_path(line, rel);
        if let Some(k) = leading_key(line) {
            last_key = Some(k);
        }
        if on_this_line {
            let mut path = table.clone();
            match in_line {
                Some(p) if !p.is_empty() => path.extend(p),
                _ => {
                    if let Some(k) = &last_key {
                        path.push(k.clone());
                    }
                }
            }
            return path.join(".");
        }
    }
    table.join(".")
}

fn parse_header(trimmed: &str) -> Option<(String, bool)> {
    let body = trimmed.split('#').next()?.trim();
    if let Some(inner) = body.strip_prefix("[[").and_then(|b| b.strip_suffix("]]")) {
        return Some((inner.trim().to_string(), true));
    }
    if let Some(inner) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        if !inner.contains('=') && !inner.contains('"') || inner.starts_with('"') {
            return Some((inner.trim().to_string(), false));
        }
    }
    None
}

fn split_dotted(name: &str) -> Vec<String> {
    name.split('.')
        .map(|p| p.trim().trim_matches('"').to_string())
        .collect()
}

/// `key = ...` at the start of a line.
fn leading_key(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('[') || t.starts_with('"') && !t.contains('=') {
        return None;
    }
    let eq = t.find('=')?;
    let key = t[..eq].trim();
    if key.is_empty() || key.contains([',', '{', '}', ' ']) && !key.starts_with('"') {
        return None;
    }
    Some(key.trim_matches('"').to_string())
}

/// Keys of the inline tables open at `rel`, plus the key at or before `rel`.
fn inline_path(line: &str, rel: usize) -> Option<Vec<String>> {
    let mut stack: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    let mut ident = String::new();
    let mut in_str = false;
    // Whole characters, not bytes: a key or string may hold any Unicode, and a byte index
    // inside one must never be used to slice.
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if i >= rel {
            // The offset points at a key (unknown-field errors): take the word there.
            let word: String = line[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            let rest = line[i + word.len()..].trim_start();
            if !word.is_empty() && rest.starts_with('=') {
                let mut p = stack.clone();
                p.push(word);
                return Some(p);
            }
            let mut p = stack.clone();
            if let Some(k) = pending {
                p.push(k);
            }
            return Some(p);
        }
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else {
            match c {
                '"' => in_str = true,
                '#' => break,
                '=' => {
                    if !ident.trim().is_empty() {
                        pending = Some(ident.trim().trim_matches('"').to_string());
                    }
                    ident.clear();
                }
                '{' => {
                    if let Some(k) = pending.take() {
                        stack.push(k);
                    }
                    ident.clear();
                }
                '}' => {
                    stack.pop();
                    ident.clear();
                }
                ',' | '[' | ']' => ident.clear(),
                _ => ident.push(c),
            }
        }
    }
    let mut p = stack;
    if let Some(k) = pending {
        p.push(k);
    }
    if p.is_empty() {
        None
    } else {
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(
            SourceLocation::of(t, 6),
            SourceLocation { line: 2, column: 1 }
        );
        assert_eq!(
            SourceLocation::of(t, 11),
            SourceLocation { line: 2, column: 6 }
        );
    }

    #[test]
    fn key_paths() {
        let t = "[[engine]]\nname = \"a\"\n[[engine]]\nname = \"b\"\nmax_parallel = \"x\"\ntls = { ca = \"c\", bogus = 1 }\n[matrix]\nversions = [\n  \"4.14\",\n  \"9.9\",\n]\n";
        let at = |needle: &str| key_path_at(t, t.find(needle).unwrap());
        assert_eq!(at("\"x\""), "engine[1].max_parallel");
        assert_eq!(at("bogus"), "engine[1].tls.bogus");
        assert_eq!(at("\"c\""), "engine[1].tls.ca");
        assert_eq!(at("\"9.9\""), "matrix.versions");
        assert_eq!(at("name = \"a\""), "engine[0].name");
    }
}
