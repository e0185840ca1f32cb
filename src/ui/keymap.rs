//! The keymap: one table that drives key handling, the status bar hints, the `?` help
//! and docs/keybindings.md, so none of them can drift from the others.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Grid,
    Detail,
    Any,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Grid => "Grid",
            Context::Detail => "Log / detail pane",
            Context::Any => "Anywhere",
        }
    }
}

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Up,
    Down,
    Left,
    Right,
    Top,
    Bottom,
    PageUp,
    PageDown,
    RowStart,
    RowEnd,
    NextArch,
    PrevArch,
    ToggleArchView,
    ToggleSelect,
    Visual,
    SelectRow,
    SelectColumn,
    SelectFailed,
    SelectStale,
    SelectArch,
    SelectBySelector,
    ClearSelection,
    Build,
    RebuildNoCache,
    Cancel,
    RetryFailed,
    Publish,
    Filter,
    FocusDetail,
    FocusGrid,
    ShowDockerfile,
    MergedLogs,
    Follow,
    Wrap,
    Search,
    NextMatch,
    PrevMatch,
    FirstError,
    SaveLog,
    ToggleMouse,
    Inspect,
    HeatMap,
    ListView,
    SortBy,
    DiffBase,
    Help,
    Quit,
}

/// One binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub context: Context,
    /// Short hint for the status bar (empty: help only).
    pub hint: &'static str,
    pub help: &'static str,
}

/// A key with modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub KeyCode, pub KeyModifiers);

const N: KeyModifiers = KeyModifiers::NONE;
const S: KeyModifiers = KeyModifiers::SHIFT;
const C: KeyModifiers = KeyModifiers::CONTROL;

const fn k(c: char) -> Key {
    Key(KeyCode::Char(c), N)
}

impl Key {
    /// How the key is written in help and docs.
    pub fn label(&self) -> String {
        let base = match self.0 {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            other => format!("{other:?}"),
        };
        if self.1.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }

    fn matches(&self, ev: &KeyEvent) -> bool {
        // Shifted letters arrive as uppercase chars, with or without the SHIFT flag.
        let mods = ev.modifiers - KeyModifiers::SHIFT;
        let want = self.1 - KeyModifiers::SHIFT;
        self.0 == ev.code && mods == want
    }
}

/// The keymap in use.
pub const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[Key(KeyCode::Up, N), k('k')],
        action: Action::Up,
        context: Context::Any,
        hint: "",
        help: "move up / scroll up",
    },
    Binding {
        keys: &[Key(KeyCode::Down, N), k('j')],
        action: Action::Down,
        context: Context::Any,
        hint: "",
        help: "move down / scroll down",
    },
    Binding {
        keys: &[Key(KeyCode::Left, N), k('h')],
        action: Action::Left,
        context: Context::Grid,
        hint: "",
        help: "move left",
    },
    Binding {
        keys: &[Key(KeyCode::Right, N), k('l')],
        action: Action::Right,
        context: Context::Grid,
        hint: "",
        help: "move right",
    },
    Binding {
        keys: &[k('g')],
        action: Action::Top,
        context: Context::Any,
        hint: "",
        help: "first row / top of the log",
    },
    Binding {
        keys: &[Key(KeyCode::Char('G'), S)],
        action: Action::Bottom,
        context: Context::Any,
        hint: "",
        help: "last row / end of the log (follows again)",
    },
    Binding {
        keys: &[Key(KeyCode::PageUp, N), Key(KeyCode::Char('u'), C)],
        action: Action::PageUp,
        context: Context::Any,
        hint: "",
        help: "page up",
    },
    Binding {
        keys: &[Key(KeyCode::PageDown, N), Key(KeyCode::Char('d'), C)],
        action: Action::PageDown,
        context: Context::Any,
        hint: "",
        help: "page down",
    },
    Binding {
        keys: &[Key(KeyCode::Home, N)],
        action: Action::RowStart,
        context: Context::Grid,
        hint: "",
        help: "first column",
    },
    Binding {
        keys: &[Key(KeyCode::End, N)],
        action: Action::RowEnd,
        context: Context::Grid,
        hint: "",
        help: "last column",
    },
    Binding {
        keys: &[k(']')],
        action: Action::NextArch,
        context: Context::Grid,
        hint: "[] arch",
        help: "next arch",
    },
    Binding {
        keys: &[k('[')],
        action: Action::PrevArch,
        context: Context::Grid,
        hint: "",
        help: "previous arch",
    },
    Binding {
        keys: &[Key(KeyCode::Tab, N)],
        action: Action::ToggleArchView,
        context: Context::Grid,
        hint: "Tab arches",
        help: "one arch at a time / every arch as a strip",
    },
    Binding {
        keys: &[k(' ')],
        action: Action::ToggleSelect,
        context: Context::Grid,
        hint: "space select",
        help: "select or unselect the focused cell",
    },
    Binding {
        keys: &[k('v')],
        action: Action::Visual,
        context: Context::Grid,
        hint: "",
        help: "start / finish a visual range selection",
    },
    Binding {
        keys: &[k('r')],
        action: Action::SelectRow,
        context: Context::Grid,
        hint: "",
        help: "select the focused row (distro)",
    },
    Binding {
        keys: &[k('c')],
        action: Action::SelectColumn,
        context: Context::Grid,
        hint: "",
        help: "select the focused column (version)",
    },
    Binding {
        keys: &[Key(KeyCode::Char('F'), S)],
        action: Action::SelectFailed,
        context: Context::Grid,
        hint: "",
        help: "select every failed cell",
    },
    Binding {
        keys: &[Key(KeyCode::Char('S'), S)],
        action: Action::SelectStale,
        context: Context::Grid,
        hint: "",
        help: "select every stale cell",
    },
    Binding {
        keys: &[Key(KeyCode::Char('A'), S)],
        action: Action::SelectArch,
        context: Context::Grid,
        hint: "",
        help: "select every cell of the shown arch",
    },
    Binding {
        keys: &[k(':')],
        action: Action::SelectBySelector,
        context: Context::Grid,
        hint: "",
        help: "select by selector text (debian-*/5.*/arm64)",
    },
    Binding {
        keys: &[k('x')],
        action: Action::ClearSelection,
        context: Context::Grid,
        hint: "",
        help: "clear the selection",
    },
    Binding {
        keys: &[k('b')],
        action: Action::Build,
        context: Context::Any,
        hint: "b build",
        help: "build the selection (or the focused cell)",
    },
    Binding {
        keys: &[Key(KeyCode::Char('B'), S)],
        action: Action::RebuildNoCache,
        context: Context::Any,
        hint: "",
        help: "rebuild without the engine's cache",
    },
    Binding {
        keys: &[Key(KeyCode::Char('X'), S)],
        action: Action::Cancel,
        context: Context::Any,
        hint: "X cancel",
        help: "cancel the selected (or focused) builds",
    },
    Binding {
        keys: &[Key(KeyCode::Char('R'), S)],
        action: Action::RetryFailed,
        context: Context::Grid,
        hint: "",
        help: "retry every failed cell",
    },
    Binding {
        keys: &[Key(KeyCode::Char('P'), S)],
        action: Action::Publish,
        context: Context::Any,
        hint: "",
        help: "publish the tags of the selection (or focused cell) to the registry",
    },
    Binding {
        keys: &[k('/')],
        action: Action::Filter,
        context: Context::Grid,
        hint: "/ filter",
        help: "filter rows by distro, version, arch or state",
    },
    Binding {
        keys: &[Key(KeyCode::Enter, N)],
        action: Action::FocusDetail,
        context: Context::Grid,
        hint: "Enter log",
        help: "focus the log pane",
    },
    Binding {
        keys: &[Key(KeyCode::Esc, N), Key(KeyCode::Enter, N)],
        action: Action::FocusGrid,
        context: Context::Detail,
        hint: "Esc grid",
        help: "back to the grid",
    },
    Binding {
        keys: &[k('d')],
        action: Action::ShowDockerfile,
        context: Context::Any,
        hint: "d dockerfile",
        help: "show the focused cell's Dockerfile / its log",
    },
    Binding {
        keys: &[Key(KeyCode::Char('M'), S)],
        action: Action::MergedLogs,
        context: Context::Any,
        hint: "",
        help: "merged log of every running build",
    },
    Binding {
        keys: &[k('f')],
        action: Action::Follow,
        context: Context::Detail,
        hint: "f follow",
        help: "follow the end of the log",
    },
    Binding {
        keys: &[k('w')],
        action: Action::Wrap,
        context: Context::Detail,
        hint: "w wrap",
        help: "wrap long lines",
    },
    Binding {
        keys: &[k('/')],
        action: Action::Search,
        context: Context::Detail,
        hint: "/ search",
        help: "search the log",
    },
    Binding {
        keys: &[k('n')],
        action: Action::NextMatch,
        context: Context::Detail,
        hint: "n/N match",
        help: "next match",
    },
    Binding {
        keys: &[Key(KeyCode::Char('N'), S)],
        action: Action::PrevMatch,
        context: Context::Detail,
        hint: "",
        help: "previous match",
    },
    Binding {
        keys: &[k('e')],
        action: Action::FirstError,
        context: Context::Detail,
        hint: "e error",
        help: "jump to the first error",
    },
    Binding {
        keys: &[k('s')],
        action: Action::SaveLog,
        context: Context::Detail,
        hint: "s save",
        help: "save the log to a file",
    },
    Binding {
        keys: &[k('i')],
        action: Action::Inspect,
        context: Context::Any,
        hint: "i sizes",
        help: "size inspector: builds over time, layers, layer diff",
    },
    Binding {
        keys: &[Key(KeyCode::Char('H'), S)],
        action: Action::HeatMap,
        context: Context::Grid,
        hint: "",
        help: "colour the grid by status / size / growth",
    },
    Binding {
        keys: &[Key(KeyCode::Char('L'), S)],
        action: Action::ListView,
        context: Context::Grid,
        hint: "",
        help: "list of cells sorted by size or growth / the grid",
    },
    Binding {
        keys: &[k('o')],
        action: Action::SortBy,
        context: Context::Grid,
        hint: "",
        help: "in the list: sort by size / growth",
    },
    Binding {
        keys: &[Key(KeyCode::Char('D'), S)],
        action: Action::DiffBase,
        context: Context::Detail,
        hint: "",
        help: "in the inspector: diff against the build under the cursor",
    },
    Binding {
        keys: &[k('m')],
        action: Action::ToggleMouse,
        context: Context::Any,
        hint: "",
        help: "mouse capture on/off (off: the terminal selects text)",
    },
    Binding {
        keys: &[k('?')],
        action: Action::Help,
        context: Context::Any,
        hint: "? help",
        help: "this help",
    },
    Binding {
        keys: &[k('q'), Key(KeyCode::Char('c'), C)],
        action: Action::Quit,
        context: Context::Any,
        hint: "q quit",
        help: "quit (asks when builds are running)",
    },
];

/// The action a key does in a context (context-specific bindings win over `Any`).
pub fn action_for(ev: &KeyEvent, ctx: Context) -> Option<Action> {
    let find = |c: Context| {
        KEYMAP
            .iter()
            .find(|b| b.context == c && b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    };
    find(ctx).or_else(|| find(Context::Any))
}

/// The bindings that apply in a context, for the status bar and help.
pub fn bindings_for(ctx: Context) -> impl Iterator<Item = &'static Binding> {
    KEYMAP
        .iter()
        .filter(move |b| b.context == ctx || b.context == Context::Any)
}

/// docs/keybindings.md, generated from the keymap.
pub fn markdown() -> String {
    let mut s = String::from("# Keybindings\n\nGenerated from the keymap in `src/ui/keymap.rs` by `imagegrid keys`; a test fails when this file drifts.\n");
    for ctx in [Context::Grid, Context::Detail, Context::Any] {
        s.push_str(&format!(
            "\n## {}\n\n| keys | action |\n|---|---|\n",
            ctx.title()
        ));
        for b in KEYMAP.iter().filter(|b| b.context == ctx) {
            let keys: Vec<String> = b.keys.iter().map(|k| format!("`{}`", k.label())).collect();
            s.push_str(&format!("| {} | {} |\n", keys.join(" "), b.help));
        }
    }
    s.push_str("\nIn the filter, selector and search prompts: type, `Enter` applies, `Esc` cancels.\nIn confirm dialogs: `y` or `Enter` confirms, `n` or `Esc` cancels.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_duplicate_keys_per_context() {
        for (i, a) in KEYMAP.iter().enumerate() {
            for b in &KEYMAP[i + 1..] {
                let overlap = a.context == b.context
                    || a.context == Context::Any
                    || b.context == Context::Any;
                if overlap && a.context == b.context {
                    for ka in a.keys {
                        assert!(
                            !b.keys.contains(ka),
                            "{:?} bound twice: {:?} and {:?}",
                            ka.label(),
                            a.action,
                            b.action
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn context_wins() {
        let slash = KeyEvent::new(KeyCode::Char('/'), N);
        assert_eq!(action_for(&slash, Context::Grid), Some(Action::Filter));
        assert_eq!(action_for(&slash, Context::Detail), Some(Action::Search));
        let shift_g = KeyEvent::new(KeyCode::Char('G'), S);
        assert_eq!(action_for(&shift_g, Context::Grid), Some(Action::Bottom));
    }
}
