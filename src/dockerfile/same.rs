//! A recorded Dockerfile text built again (`build --same-inputs`, issue 13): the text a
//! build recorded names its base by the reference a text rendered without a base image
//! does (the staging tag); building it FROM an exact base image swaps that reference in
//! its FROM lines, as [`Renderer::render`] does with `from`.

use super::{RenderError, Renderer};
use crate::config::TagConfig;
use crate::matrix::{Cell, Matrix};
use crate::model::inputs::Pins;

/// A marker no text contains, rendered in place of the base to find where the base goes.
const MARK: &str = "imagegrid-base-reference-marker";

/// The reference a compiler or archive cell's text names its base by when rendered
/// without a base image (today's templates or plan: `ocurrent/opam-staging:debian-13-opam-amd64`);
/// None for a base cell, or when no FROM takes the base.
pub fn base_reference(
    r: &Renderer,
    m: &Matrix,
    cell: &Cell,
    tags: &TagConfig,
    pins: &Pins,
) -> Result<Option<String>, RenderError> {
    if cell.base_id().is_none() {
        return Ok(None);
    }
    let plain = r.render_pinned(m, cell, None, tags, pins)?;
    let marked = r.render_pinned(m, cell, Some(MARK), tags, pins)?;
    for (a, b) in plain.lines().zip(marked.lines()) {
        if let Some(i) = b.split_whitespace().position(|w| w == MARK) {
            return Ok(a.split_whitespace().nth(i).map(str::to_string));
        }
    }
    Ok(None)
}

/// `text` with `base_ref` replaced by `from` where a FROM line names it (as a whole word).
pub fn swap_from(text: &str, base_ref: &str, from: &str) -> String {
    let mut out = String::with_capacity(text.len() + from.len());
    for line in text.split_inclusive('\n') {
        let is_from = line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
        if !is_from {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find(base_ref) {
            let end = i + base_ref.len();
            let before = rest[..i].chars().next_back();
            let after = rest[end..].chars().next();
            let whole =
                before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace);
            out.push_str(&rest[..i]);
            out.push_str(if whole { from } else { base_ref });
            rest = &rest[end..];
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_reference_is_swapped_in_from_lines_only() {
        let t = "FROM busybox AS a\n\tFROM ocurrent/opam-staging:x AS b\nRUN echo ocurrent/opam-staging:x\nFROM ocurrent/opam-staging:x\n";
        assert_eq!(
            swap_from(t, "ocurrent/opam-staging:x", "img:pinned"),
            "FROM busybox AS a\n\tFROM img:pinned AS b\nRUN echo ocurrent/opam-staging:x\nFROM img:pinned\n"
        );
    }

    #[test]
    fn a_compiler_cell_names_its_base_by_its_staging_tag() {
        let loaded = crate::config::parse("t.toml", "").unwrap();
        let m = Matrix::load(&loaded).unwrap();
        let r = Renderer::new(None);
        let c = m.cells.iter().find(|c| c.base_id().is_some()).unwrap();
        let base = m.cell(&c.base_id().unwrap()).unwrap();
        let tags = &loaded.config.tags;
        let got = base_reference(&r, &m, c, tags, &Pins::default()).unwrap();
        assert_eq!(got, Some(base.staging_tag(tags)));
        assert_eq!(
            base_reference(&r, &m, base, tags, &Pins::default()).unwrap(),
            None
        );
        // Swapping it gives what rendering FROM that image gives.
        let text = r
            .render_pinned(&m, c, None, tags, &Pins::default())
            .unwrap();
        assert_eq!(
            swap_from(&text, got.as_deref().unwrap(), "x/base:pinned"),
            r.render_pinned(&m, c, Some("x/base:pinned"), tags, &Pins::default())
                .unwrap()
        );
    }
}
