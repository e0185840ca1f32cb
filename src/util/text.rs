//! Cutting text to fit: a column, a line, a short image id.

/// At most `w` characters; a cut string ends in `…` (counted in `w`).
pub fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        s.chars().take(w.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// The first 12 hex digits of an image id or digest, without its `sha256:` prefix, as
/// `docker images` shows them.
pub fn short_id(id: &str) -> &str {
    let s = id.strip_prefix("sha256:").unwrap_or(id);
    let end = s.char_indices().nth(12).map(|(i, _)| i).unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("éé"), "éé");
    }
}
