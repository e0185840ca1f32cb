//! SGR ("Select Graphic Rendition") state: what colours and attributes are in force.
//!
//! The sanitiser re-emits the SGR sequences it receives, but it also has to know the
//! state they leave behind, to carry colour over to the next line, to close every
//! line with a reset and to re-render lines rewritten by `\r`.

/// SGR reset sequence; every emitted line that leaves SGR state set ends with it.
pub(super) const RESET: &str = "\x1b[0m";

const BOLD: u16 = 1;
const DIM: u16 = 1 << 1;
const ITALIC: u16 = 1 << 2;
const BLINK: u16 = 1 << 3;
const RAPID_BLINK: u16 = 1 << 4;
const INVERSE: u16 = 1 << 5;
const HIDDEN: u16 = 1 << 6;
const STRIKE: u16 = 1 << 7;
const OVERLINE: u16 = 1 << 8;
/// Some parameter this model does not know (fonts, framed, ...) is in force: the state
/// is not default, but it cannot be re-created either.
const EXOTIC: u16 = 1 << 15;

/// `(flag, SGR parameter that sets it)`, in the order they are re-emitted.
const FLAG_PARAMS: [(u16, u16); 9] = [
    (BOLD, 1),
    (DIM, 2),
    (ITALIC, 3),
    (BLINK, 5),
    (RAPID_BLINK, 6),
    (INVERSE, 7),
    (HIDDEN, 8),
    (STRIKE, 9),
    (OVERLINE, 53),
];

/// A colour slot (foreground, background or underline colour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Color {
    /// The terminal's default.
    #[default]
    Default,
    /// One of the 256 indexed colours (0..=7 normal, 8..=15 bright).
    Indexed(u8),
    /// 24-bit colour.
    Rgb(u8, u8, u8),
}

/// The graphic rendition in force; `Pen::default()` is the terminal's reset state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pen {
    flags: u16,
    /// 0 none, 1 single, 2 double, 3 curly, 4 dotted, 5 dashed.
    underline: u8,
    fg: Color,
    bg: Color,
    ul_color: Color,
}

impl Pen {
    /// Whether anything that [`Pen::write_params`] can re-create is set.
    pub(super) fn has_known(&self) -> bool {
        self.flags & !EXOTIC != 0
            || self.underline != 0
            || self.fg != Color::Default
            || self.bg != Color::Default
            || self.ul_color != Color::Default
    }

    /// Applies one SGR sequence, given as its parameters (each a slice of sub-parameters).
    pub(super) fn apply<'a, I: Iterator<Item = &'a [u16]>>(&mut self, mut params: I) {
        while let Some(param) = params.next() {
            let code = param.first().copied().unwrap_or(0);
            match code {
                0 => *self = Pen::default(),
                1 => self.flags |= BOLD,
                2 => self.flags |= DIM,
                3 => self.flags |= ITALIC,
                4 => match param.get(1) {
                    None => self.underline = 1,
                    Some(&style @ 0..=5) => self.underline = style as u8,
                    Some(_) => self.flags |= EXOTIC,
                },
                5 => self.flags |= BLINK,
                6 => self.flags |= RAPID_BLINK,
                7 => self.flags |= INVERSE,
                8 => self.flags |= HIDDEN,
                9 => self.flags |= STRIKE,
                21 => self.underline = 2,
                22 => self.flags &= !(BOLD | DIM),
                23 => self.flags &= !ITALIC,
                24 => self.underline = 0,
                25 => self.flags &= !(BLINK | RAPID_BLINK),
                27 => self.flags &= !INVERSE,
                28 => self.flags &= !HIDDEN,
                29 => self.flags &= !STRIKE,
                30..=37 => self.fg = Color::Indexed((code - 30) as u8),
                39 => self.fg = Color::Default,
                40..=47 => self.bg = Color::Indexed((code - 40) as u8),
                49 => self.bg = Color::Default,
                53 => self.flags |= OVERLINE,
                55 => self.flags &= !OVERLINE,
                59 => self.ul_color = Color::Default,
                90..=97 => self.fg = Color::Indexed((code - 90 + 8) as u8),
                100..=107 => self.bg = Color::Indexed((code - 100 + 8) as u8),
                38 | 48 | 58 => {
                    let color = if param.len() > 1 {
                        colon_color(&param[1..])
                    } else {
                        semicolon_color(&mut params)
                    };
                    match (color, code) {
                        (Some(c), 38) => self.fg = c,
                        (Some(c), 48) => self.bg = c,
                        (Some(c), _) => self.ul_color = c,
                        (None, _) => self.flags |= EXOTIC,
                    }
                }
                _ => self.flags |= EXOTIC,
            }
        }
    }

    /// Writes the parameters that re-create this pen from the reset state, e.g. `1;31`,
    /// except the underline colour (see [`write_transition`]); nothing for the default pen.
    pub(super) fn write_params(&self, out: &mut String) {
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !first {
                out.push(';');
            }
            first = false;
        };
        for (flag, code) in FLAG_PARAMS {
            if self.flags & flag != 0 {
                sep(out);
                push_u16(out, code);
            }
        }
        match self.underline {
            0 => {}
            1 => {
                sep(out);
                out.push('4');
            }
            style => {
                sep(out);
                out.push_str("4:");
                push_u16(out, style.into());
            }
        }
        for (color, base, bright, extended) in [(self.fg, 30, 90, 38), (self.bg, 40, 100, 48)] {
            match color {
                Color::Default => {}
                Color::Indexed(i) if i < 8 => {
                    sep(out);
                    push_u16(out, base + u16::from(i));
                }
                Color::Indexed(i) if i < 16 => {
                    sep(out);
                    push_u16(out, bright + u16::from(i) - 8);
                }
                color => {
                    sep(out);
                    push_u16(out, extended);
                    write_color_tail(out, color);
                }
            }
        }
    }
}

/// Writes the SGR sequence(s) (if any) that turn rendition `from` into `to` on a terminal.
///
/// Always absolute (reset first) unless `from` has nothing to reset, so it is correct
/// whatever attributes `from` holds. An underline colour goes in a sequence of its own, in
/// the colon form as canonical re-emission writes it (`58:5:n`, `58:2:0:r:g:b`): renderers
/// that do not know it (ansi-to-tui reads `58;5;9` as 58, blink, strike) drop only that.
pub(super) fn write_transition(out: &mut String, from: &Pen, to: &Pen) {
    let reset_needed = from.has_known();
    if !to.has_known() {
        if reset_needed {
            out.push_str(RESET);
        }
        return;
    }
    let start = out.len();
    out.push_str(if reset_needed { "\x1b[0;" } else { "\x1b[" });
    let params = out.len();
    to.write_params(out);
    if out.len() == params {
        out.truncate(start);
        if reset_needed {
            out.push_str(RESET);
        }
    } else {
        out.push('m');
    }
    match to.ul_color {
        Color::Default => {}
        Color::Indexed(i) => {
            out.push_str("\x1b[58:5:");
            push_u16(out, i.into());
            out.push('m');
        }
        Color::Rgb(r, g, b) => {
            out.push_str("\x1b[58:2:0:");
            push_u16(out, r.into());
            out.push(':');
            push_u16(out, g.into());
            out.push(':');
            push_u16(out, b.into());
            out.push('m');
        }
    }
}

/// The parameters of an SGR sequence that this module understands, in order; exotic ones
/// (unknown codes, bad colours, underline styles past 5) are dropped, so that every emitted
/// attribute is one a later reset is known to clear.
pub(super) fn known_params<'a, I: Iterator<Item = &'a [u16]>>(params: I) -> Vec<Vec<u16>> {
    let params: Vec<&[u16]> = params.collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < params.len() {
        let p = params[i];
        let code = p.first().copied().unwrap_or(0);
        i += 1;
        match code {
            38 | 48 | 58 if p.len() > 1 && colon_color(&p[1..]).is_some() => out.push(p.to_vec()),
            38 | 48 | 58 if p.len() > 1 => {}
            38 | 48 | 58 => {
                // Semicolon form: the colour's parameters follow as parameters of their own.
                let rest: Vec<u16> = params[i..]
                    .iter()
                    .map(|q| q.first().copied().unwrap_or(0))
                    .collect();
                let take = match rest.first() {
                    Some(5) if rest.len() >= 2 && byte(rest[1]).is_some() => 2,
                    Some(2) if rest.len() >= 4 && rest[1..4].iter().all(|v| byte(*v).is_some()) => {
                        4
                    }
                    _ => 0,
                };
                if take > 0 {
                    out.push(vec![code]);
                    out.extend(
                        params[i..i + take]
                            .iter()
                            .map(|q| vec![q.first().copied().unwrap_or(0)]),
                    );
                }
                i += take;
            }
            4 if p.len() > 1 && p[1] > 5 => {}
            0..=9
            | 21..=25
            | 27..=29
            | 30..=37
            | 39..=47
            | 49
            | 53
            | 55
            | 59
            | 90..=97
            | 100..=107 => out.push(p.to_vec()),
            _ => {}
        }
    }
    out
}

/// Writes `params` in canonical SGR form: sub-parameters joined by `:`, parameters by `;`,
/// except that valid colon-form colours (`38:2::r:g:b`, `48:5:n`) take the semicolon form
/// (`38;2;r;g;b`), which more renderers understand (ansi-to-tui only knows that one).
pub(super) fn write_canonical<'a, I: Iterator<Item = &'a [u16]>>(out: &mut String, params: I) {
    out.push_str("\x1b[");
    for (i, param) in params.enumerate() {
        if i > 0 {
            out.push(';');
        }
        if let [code @ (38 | 48), sub @ ..] = param {
            if let Some(color) = colon_color(sub) {
                push_u16(out, *code);
                write_color_tail(out, color);
                continue;
            }
        }
        for (j, &value) in param.iter().enumerate() {
            if j > 0 {
                out.push(':');
            }
            push_u16(out, value);
        }
    }
    out.push('m');
}

/// Writes `;5;n` or `;2;r;g;b`, what follows `38`/`48`/`58` in the semicolon form.
fn write_color_tail(out: &mut String, color: Color) {
    match color {
        Color::Default => {}
        Color::Indexed(i) => {
            out.push_str(";5;");
            push_u16(out, i.into());
        }
        Color::Rgb(r, g, b) => {
            out.push_str(";2;");
            push_u16(out, r.into());
            out.push(';');
            push_u16(out, g.into());
            out.push(';');
            push_u16(out, b.into());
        }
    }
}

/// `38:5:n`, `38:2:r:g:b` and `38:2:colour-space:r:g:b` (the part after `38`).
fn colon_color(sub: &[u16]) -> Option<Color> {
    match sub {
        [5, i] => byte(*i).map(Color::Indexed),
        [2, r, g, b] | [2, _, r, g, b, ..] => Some(Color::Rgb(byte(*r)?, byte(*g)?, byte(*b)?)),
        _ => None,
    }
}

/// `38;5;n` and `38;2;r;g;b`: consumes the parameters that follow `38`.
fn semicolon_color<'a, I: Iterator<Item = &'a [u16]>>(params: &mut I) -> Option<Color> {
    let mut next = || params.next().map(|p| p.first().copied().unwrap_or(0));
    match next()? {
        5 => byte(next()?).map(Color::Indexed),
        2 => {
            let (r, g, b) = (next()?, next()?, next()?);
            Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?))
        }
        _ => None,
    }
}

fn byte(v: u16) -> Option<u8> {
    u8::try_from(v).ok()
}

/// Appends the decimal form of `v` (no `fmt` machinery: this runs per SGR parameter).
pub(super) fn push_u16(out: &mut String, v: u16) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(d as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pen_of(params: &[&[u16]]) -> Pen {
        let mut pen = Pen::default();
        pen.apply(params.iter().copied());
        pen
    }

    fn params_of(pen: &Pen) -> String {
        let mut s = String::new();
        pen.write_params(&mut s);
        s
    }

    #[test]
    fn reset_and_flags() {
        let pen = pen_of(&[&[1], &[31]]);
        assert_eq!(params_of(&pen), "1;31");
        assert_eq!(pen_of(&[&[1], &[31], &[0]]), Pen::default());
        assert_eq!(pen_of(&[&[1], &[22]]), Pen::default());
    }

    #[test]
    fn extended_colours_both_forms() {
        assert_eq!(params_of(&pen_of(&[&[38], &[5], &[196]])), "38;5;196");
        assert_eq!(params_of(&pen_of(&[&[38, 5, 196]])), "38;5;196");
        assert_eq!(
            params_of(&pen_of(&[&[38, 2, 0, 255, 0, 0]])),
            "38;2;255;0;0"
        );
        assert_eq!(params_of(&pen_of(&[&[48, 2, 1, 2, 3]])), "48;2;1;2;3");
        assert_eq!(
            params_of(&pen_of(&[&[38], &[2], &[1], &[2], &[3]])),
            "38;2;1;2;3"
        );
        // `38;5;0` is black, not a reset hidden in the middle.
        assert_eq!(params_of(&pen_of(&[&[38], &[5], &[0]])), "30");
        assert_eq!(params_of(&pen_of(&[&[91], &[102]])), "91;102");
        assert_eq!(params_of(&pen_of(&[&[4, 3], &[58], &[5], &[9]])), "4:3");
    }

    #[test]
    fn unknown_parameters_are_not_default() {
        let pen = pen_of(&[&[51]]);
        assert_ne!(pen, Pen::default());
        assert!(!pen.has_known());
        assert_eq!(pen_of(&[&[51], &[0]]), Pen::default());
    }

    #[test]
    fn transitions() {
        let red = pen_of(&[&[31]]);
        let bold = pen_of(&[&[1]]);
        let mut s = String::new();
        write_transition(&mut s, &Pen::default(), &red);
        write_transition(&mut s, &red, &bold);
        write_transition(&mut s, &bold, &Pen::default());
        write_transition(&mut s, &Pen::default(), &Pen::default());
        assert_eq!(s, "\x1b[31m\x1b[0;1m\x1b[0m");
        s.clear();
        let curly_red = pen_of(&[&[4, 3], &[58, 2, 0, 255, 0, 0]]);
        let just_colour = pen_of(&[&[58, 5, 9]]);
        write_transition(&mut s, &Pen::default(), &curly_red);
        write_transition(&mut s, &curly_red, &just_colour);
        write_transition(&mut s, &Pen::default(), &just_colour);
        assert_eq!(
            s,
            "\x1b[4:3m\x1b[58:2:0:255:0:0m\x1b[0m\x1b[58:5:9m\x1b[58:5:9m"
        );
    }

    #[test]
    fn canonical_form() {
        let mut s = String::new();
        let params: [&[u16]; 5] = [&[38, 2, 0, 255, 0, 0], &[1], &[48, 5, 9], &[4, 3], &[38, 7]];
        write_canonical(&mut s, params.into_iter());
        assert_eq!(s, "\x1b[38;2;255;0;0;1;48;5;9;4:3;38:7m");
        s.clear();
        push_u16(&mut s, 0);
        push_u16(&mut s, 65535);
        assert_eq!(s, "065535");
    }
}
