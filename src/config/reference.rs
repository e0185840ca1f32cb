//! docs/config.md, generated from config.example.toml: every table, key, example value and
//! the comment above it. A test keeps the doc and the example in step, and checks that every
//! key the loader accepts is documented in the example.

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    pub table: String,
    pub key: String,
    pub example: String,
    pub doc: String,
}

/// The keys of an example config, with the comments just above each (commented-out keys count).
pub fn keys(example: &str) -> Vec<KeyDoc> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut comment: Vec<String> = Vec::new();
    for line in example.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("# ----") {
            comment.clear();
            continue;
        }
        if let Some(h) = t.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            table = format!("[[{h}]]");
            comment.clear();
            continue;
        }
        if t.starts_with('[') {
            table = t.split('#').next().unwrap_or(t).trim().to_string();
            comment.clear();
            continue;
        }
        let body = t.strip_prefix('#').map(str::trim);
        let candidate = body.unwrap_or(t);
        let is_key = candidate
            .split_once('=')
            .map(|(k, _)| {
                !k.trim().is_empty()
                    && k.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .unwrap_or(false);
        if is_key {
            let (k, v) = candidate.split_once('=').expect("checked");
            let v = v.split(" #").next().unwrap_or(v).trim();
            let key = k.trim().to_string();
            if !out
                .iter()
                .any(|d: &KeyDoc| d.table == table && d.key == key)
            {
                out.push(KeyDoc {
                    table: table.clone(),
                    key,
                    example: v.to_string(),
                    doc: comment.join(" "),
                });
            }
            comment.clear();
        } else if let Some(c) = body {
            comment.push(c.to_string());
        }
    }
    out
}

/// The Markdown reference.
pub fn markdown(example: &str) -> String {
    let mut s = String::from(
        "# Config reference\n\nGenerated from `config.example.toml` by `imagegrid config-reference`; a test fails when it drifts.\n\
         The example file is itself a valid config. Paths are relative to the config file.\n",
    );
    let mut table = None;
    for k in keys(example) {
        if table.as_deref() != Some(k.table.as_str()) {
            s.push_str(&format!(
                "\n## `{}`\n\n| key | example | meaning |\n|---|---|---|\n",
                k.table
            ));
            table = Some(k.table.clone());
        }
        s.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            k.key,
            k.example.replace('|', "\\|"),
            k.doc.replace('|', "\\|")
        ));
    }
    s
}
