//! The keymap: one table for every context (views, prompts, confirms, the help popup) that
//! drives key handling, the status bar hints, popup footers, the `?` help and
//! docs/keybindings.md, so none of them can drift from the others.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where the keyboard is: one per view, prompt and popup. [`crate::ui::state::App::context`]
/// derives it from the state; a key means what the bindings whose [`Scope`] covers it say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The grid has the keyboard.
    Grid,
    /// The list view (cells sorted by size or growth) has the keyboard.
    List,
    /// The failures view (causes of the failed cells) has the keyboard.
    Failures,
    /// The detail pane shows the focused cell's log.
    Log,
    /// The detail pane shows the merged log of running builds.
    Merged,
    /// The detail pane shows the focused cell's Dockerfile.
    Dockerfile,
    /// The detail pane shows the size inspector.
    Inspector,
    /// Typing a filter, selector or search.
    Prompt,
    /// A confirm dialog is open.
    Confirm,
    /// The help popup is open.
    Help,
}

impl Context {
    /// The contexts of the views (no prompt or popup open).
    pub const VIEWS: [Context; 7] = [
        Context::Grid,
        Context::List,
        Context::Failures,
        Context::Log,
        Context::Merged,
        Context::Dockerfile,
        Context::Inspector,
    ];
}

/// The contexts a binding acts in; also the sections of the help and of docs/keybindings.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Moving and scrolling: every view and the help popup.
    Moves,
    /// The grid only (moves and selections by position).
    Grid,
    /// The grid and the list view (the cells, whichever way they are shown).
    Cells,
    /// The list view only.
    List,
    /// The failures view only.
    Failures,
    /// Every view of the detail pane.
    Detail,
    /// The log and the merged log.
    Log,
    /// Text shown in the detail pane: the log, the merged log and the Dockerfile.
    Text,
    /// Everything that can be searched: the texts, the size inspector and the help popup.
    Search,
    /// The size inspector.
    Inspector,
    /// Every view (not prompts or popups).
    Anywhere,
    Prompt,
    Confirm,
    Help,
}

impl Scope {
    /// Sections in the order help and docs show them.
    pub const ALL: [Scope; 14] = [
        Scope::Moves,
        Scope::Grid,
        Scope::Cells,
        Scope::List,
        Scope::Failures,
        Scope::Detail,
        Scope::Log,
        Scope::Text,
        Scope::Search,
        Scope::Inspector,
        Scope::Anywhere,
        Scope::Prompt,
        Scope::Confirm,
        Scope::Help,
    ];

    /// Does a binding of this scope act in `ctx`?
    pub fn covers(self, ctx: Context) -> bool {
        use Context as C;
        match self {
            Scope::Moves => Context::VIEWS.contains(&ctx) || ctx == C::Help,
            Scope::Grid => ctx == C::Grid,
            Scope::Cells => matches!(ctx, C::Grid | C::List),
            Scope::List => ctx == C::List,
            Scope::Failures => ctx == C::Failures,
            Scope::Detail => matches!(ctx, C::Log | C::Merged | C::Dockerfile | C::Inspector),
            Scope::Log => matches!(ctx, C::Log | C::Merged),
            Scope::Text => matches!(ctx, C::Log | C::Merged | C::Dockerfile),
            Scope::Search => matches!(
                ctx,
                C::Log | C::Merged | C::Dockerfile | C::Inspector | C::Help
            ),
            Scope::Inspector => ctx == C::Inspector,
            Scope::Anywhere => Context::VIEWS.contains(&ctx),
            Scope::Prompt => ctx == C::Prompt,
            Scope::Confirm => ctx == C::Confirm,
            Scope::Help => ctx == C::Help,
        }
    }

    /// The section title.
    pub fn title(self) -> &'static str {
        match self {
            Scope::Moves => "Moving and scrolling (every view, the help)",
            Scope::Grid => "Grid",
            Scope::Cells => "Grid and list view",
            Scope::List => "List view",
            Scope::Failures => "Failures view",
            Scope::Detail => "Detail pane (log, merged log, Dockerfile, inspector)",
            Scope::Log => "Log and merged log",
            Scope::Text => "Log, merged log and Dockerfile",
            Scope::Search => "Search (log, merged log, Dockerfile, inspector, help)",
            Scope::Inspector => "Size inspector",
            Scope::Anywhere => "Anywhere",
            Scope::Prompt => "Filter, selector and search prompts",
            Scope::Confirm => "Confirm dialogs",
            Scope::Help => "Help popup",
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
    /// Back one level: cancel the visual range, clear the search or the filter, unzoom,
    /// leave the detail pane or the list view.
    Back,
    /// The focused pane takes the whole screen, or gives it back.
    Zoom,
    Build,
    RebuildNoCache,
    Cancel,
    RetryFailed,
    Publish,
    ReloadPlan,
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
    /// Open or close the failures view.
    Failures,
    /// The failures view: select the cells of the cause under the cursor.
    SelectCause,
    /// The failures view: back to the grid.
    CloseFailures,
    Help,
    Quit,
    /// Prompts: apply the text typed.
    PromptApply,
    /// Prompts: leave without applying.
    PromptCancel,
    /// Prompts: delete the last character.
    PromptBackspace,
    /// Prompts: clear the text.
    PromptClear,
    /// The quit dialog: a second Ctrl-C quits at once.
    ForceQuit,
    /// Confirm dialogs: yes.
    ConfirmYes,
    /// Confirm dialogs: no.
    ConfirmNo,
    /// The help popup: close it.
    CloseHelp,
}

/// One binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    /// Where it acts.
    pub scope: Scope,
    /// Short hint for the status bar or a popup's footer (empty: help only).
    pub hint: &'static str,
    /// What it does, for the help and docs.
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
            KeyCode::Backspace => "Backspace".into(),
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
        scope: Scope::Moves,
        hint: "",
        help: "move up / scroll up (the list, the inspector's builds, the help too)",
    },
    Binding {
        keys: &[Key(KeyCode::Down, N), k('j')],
        action: Action::Down,
        scope: Scope::Moves,
        hint: "",
        help: "move down / scroll down",
    },
    Binding {
        keys: &[Key(KeyCode::Left, N), k('h')],
        action: Action::Left,
        scope: Scope::Grid,
        hint: "",
        help: "move left",
    },
    Binding {
        keys: &[Key(KeyCode::Right, N), k('l')],
        action: Action::Right,
        scope: Scope::Grid,
        hint: "",
        help: "move right",
    },
    Binding {
        keys: &[k('g')],
        action: Action::Top,
        scope: Scope::Moves,
        hint: "",
        help: "first row / top of the text",
    },
    Binding {
        keys: &[Key(KeyCode::Char('G'), S)],
        action: Action::Bottom,
        scope: Scope::Moves,
        hint: "",
        help: "last row / end of the text (the log follows again)",
    },
    Binding {
        keys: &[Key(KeyCode::PageUp, N), Key(KeyCode::Char('u'), C)],
        action: Action::PageUp,
        scope: Scope::Moves,
        hint: "",
        help: "page up",
    },
    Binding {
        keys: &[Key(KeyCode::PageDown, N), Key(KeyCode::Char('d'), C)],
        action: Action::PageDown,
        scope: Scope::Moves,
        hint: "",
        help: "page down",
    },
    Binding {
        keys: &[Key(KeyCode::Home, N)],
        action: Action::RowStart,
        scope: Scope::Grid,
        hint: "",
        help: "first column",
    },
    Binding {
        keys: &[Key(KeyCode::End, N)],
        action: Action::RowEnd,
        scope: Scope::Grid,
        hint: "",
        help: "last column",
    },
    Binding {
        keys: &[k(']')],
        action: Action::NextArch,
        scope: Scope::Cells,
        hint: "[] arch",
        help: "next arch",
    },
    Binding {
        keys: &[k('[')],
        action: Action::PrevArch,
        scope: Scope::Cells,
        hint: "",
        help: "previous arch",
    },
    Binding {
        keys: &[Key(KeyCode::Tab, N)],
        action: Action::ToggleArchView,
        scope: Scope::Cells,
        hint: "Tab arches",
        help: "one arch at a time / every arch as a strip",
    },
    Binding {
        keys: &[k(' ')],
        action: Action::ToggleSelect,
        scope: Scope::Grid,
        hint: "space select",
        help: "select or unselect the focused cell",
    },
    Binding {
        keys: &[k('v')],
        action: Action::Visual,
        scope: Scope::Grid,
        hint: "",
        help: "start / finish a visual range selection",
    },
    Binding {
        keys: &[k('r')],
        action: Action::SelectRow,
        scope: Scope::Grid,
        hint: "",
        help: "select the focused row (distro) / unselect it when all of it is selected",
    },
    Binding {
        keys: &[k('c')],
        action: Action::SelectColumn,
        scope: Scope::Grid,
        hint: "",
        help: "select the focused column (version) / unselect it when all of it is selected",
    },
    Binding {
        keys: &[Key(KeyCode::Char('F'), S)],
        action: Action::SelectFailed,
        scope: Scope::Cells,
        hint: "",
        help: "select every failed cell",
    },
    Binding {
        keys: &[Key(KeyCode::Char('S'), S)],
        action: Action::SelectStale,
        scope: Scope::Cells,
        hint: "",
        help: "select every stale cell",
    },
    Binding {
        keys: &[Key(KeyCode::Char('A'), S)],
        action: Action::SelectArch,
        scope: Scope::Cells,
        hint: "",
        help: "select every cell of the shown arch",
    },
    Binding {
        keys: &[k(':')],
        action: Action::SelectBySelector,
        scope: Scope::Cells,
        hint: "",
        help: "select by selector text (debian-*/5.*/arm64)",
    },
    Binding {
        keys: &[k('x')],
        action: Action::ClearSelection,
        scope: Scope::Cells,
        hint: "",
        help: "clear the selection",
    },
    Binding {
        keys: &[k('b')],
        action: Action::Build,
        scope: Scope::Anywhere,
        hint: "b build",
        help: "build the selection (or the focused cell)",
    },
    Binding {
        keys: &[Key(KeyCode::Char('B'), S)],
        action: Action::RebuildNoCache,
        scope: Scope::Anywhere,
        hint: "",
        help: "rebuild without the engine's cache",
    },
    Binding {
        keys: &[Key(KeyCode::Char('X'), S)],
        action: Action::Cancel,
        scope: Scope::Anywhere,
        hint: "X cancel",
        help: "cancel the selected (or focused) builds",
    },
    Binding {
        keys: &[Key(KeyCode::Char('R'), S)],
        action: Action::RetryFailed,
        scope: Scope::Cells,
        hint: "",
        help: "retry every failed cell",
    },
    Binding {
        keys: &[Key(KeyCode::Char('P'), S)],
        action: Action::Publish,
        scope: Scope::Anywhere,
        hint: "",
        help: "publish the tags of the selection (or focused cell) to the registry",
    },
    Binding {
        keys: &[Key(KeyCode::Char('r'), C)],
        action: Action::ReloadPlan,
        scope: Scope::Cells,
        hint: "",
        help: "read the plan again: cells it changed turn stale",
    },
    Binding {
        keys: &[k('/')],
        action: Action::Filter,
        scope: Scope::Cells,
        hint: "/ filter",
        help: "filter rows by distro, version, arch or state",
    },
    Binding {
        keys: &[Key(KeyCode::Enter, N)],
        action: Action::FocusDetail,
        scope: Scope::Cells,
        hint: "Enter log",
        help: "focus the log pane",
    },
    Binding {
        keys: &[Key(KeyCode::Enter, N)],
        action: Action::FocusGrid,
        scope: Scope::Detail,
        hint: "",
        help: "back to the grid",
    },
    Binding {
        keys: &[Key(KeyCode::Esc, N)],
        action: Action::Back,
        scope: Scope::Anywhere,
        hint: "Esc back",
        help: "back one level: cancel the visual range, clear the search or filter, unzoom, leave the pane or the list",
    },
    Binding {
        keys: &[k('z')],
        action: Action::Zoom,
        scope: Scope::Anywhere,
        hint: "z zoom",
        help: "zoom: the focused pane takes the screen / gives it back",
    },
    Binding {
        keys: &[k('d')],
        action: Action::ShowDockerfile,
        scope: Scope::Anywhere,
        hint: "d dockerfile",
        help: "show the focused cell's Dockerfile (a stale one: why, and the diff against its last success, first) / its log again; moving to another cell shows that cell's log",
    },
    Binding {
        keys: &[Key(KeyCode::Char('M'), S)],
        action: Action::MergedLogs,
        scope: Scope::Anywhere,
        hint: "",
        help: "merged log of every running build",
    },
    Binding {
        keys: &[k('f')],
        action: Action::Follow,
        scope: Scope::Log,
        hint: "f follow",
        help: "follow the end of the log",
    },
    Binding {
        keys: &[k('w')],
        action: Action::Wrap,
        scope: Scope::Text,
        hint: "w wrap",
        help: "wrap long lines / cut them",
    },
    Binding {
        keys: &[k('/')],
        action: Action::Search,
        scope: Scope::Search,
        hint: "/ search",
        help: "search what is shown (text, builds and layers, this help)",
    },
    Binding {
        keys: &[k('n')],
        action: Action::NextMatch,
        scope: Scope::Search,
        hint: "n/N match",
        help: "next match",
    },
    Binding {
        keys: &[Key(KeyCode::Char('N'), S)],
        action: Action::PrevMatch,
        scope: Scope::Search,
        hint: "",
        help: "previous match",
    },
    Binding {
        keys: &[k('e')],
        action: Action::FirstError,
        scope: Scope::Log,
        hint: "e error",
        help: "jump to the first error",
    },
    Binding {
        keys: &[k('s')],
        action: Action::SaveLog,
        scope: Scope::Log,
        hint: "s save",
        help: "save the log to a file",
    },
    Binding {
        keys: &[k('i')],
        action: Action::Inspect,
        scope: Scope::Anywhere,
        hint: "i sizes",
        help: "size inspector: builds over time, layers, layer diff / close it",
    },
    Binding {
        keys: &[Key(KeyCode::Char('H'), S)],
        action: Action::HeatMap,
        scope: Scope::Grid,
        hint: "",
        help: "colour the grid by status / size / growth / failure cause",
    },
    Binding {
        keys: &[Key(KeyCode::Char('L'), S)],
        action: Action::ListView,
        scope: Scope::Cells,
        hint: "",
        help: "list of cells sorted by size or growth / the grid",
    },
    Binding {
        keys: &[Key(KeyCode::Char('C'), S)],
        action: Action::Failures,
        scope: Scope::Cells,
        hint: "",
        help: "failures view: failed cells grouped by cause, with hints",
    },
    Binding {
        keys: &[Key(KeyCode::Enter, N)],
        action: Action::SelectCause,
        scope: Scope::Failures,
        hint: "Enter select its cells",
        help: "select the cells of the cause under the cursor (then b builds them)",
    },
    Binding {
        keys: &[Key(KeyCode::Char('C'), S)],
        action: Action::CloseFailures,
        scope: Scope::Failures,
        hint: "C/Esc grid",
        help: "back to the grid (Esc too: back one level)",
    },
    Binding {
        keys: &[k('o')],
        action: Action::SortBy,
        scope: Scope::List,
        hint: "o sort",
        help: "sort by size / growth",
    },
    Binding {
        keys: &[Key(KeyCode::Char('D'), S)],
        action: Action::DiffBase,
        scope: Scope::Inspector,
        hint: "D diff base",
        help: "diff against the build under the cursor",
    },
    Binding {
        keys: &[k('m')],
        action: Action::ToggleMouse,
        scope: Scope::Anywhere,
        hint: "",
        help: "mouse capture on/off (off: the terminal selects text)",
    },
    Binding {
        keys: &[k('?')],
        action: Action::Help,
        scope: Scope::Anywhere,
        hint: "? help",
        help: "this help",
    },
    Binding {
        keys: &[k('q'), Key(KeyCode::Char('c'), C)],
        action: Action::Quit,
        scope: Scope::Anywhere,
        hint: "q quit",
        help: "quit (asks when builds are running)",
    },
    Binding {
        keys: &[Key(KeyCode::Enter, N)],
        action: Action::PromptApply,
        scope: Scope::Prompt,
        hint: "Enter apply",
        help: "apply the text (other keys type)",
    },
    Binding {
        keys: &[Key(KeyCode::Esc, N)],
        action: Action::PromptCancel,
        scope: Scope::Prompt,
        hint: "Esc cancel",
        help: "leave the prompt, changing nothing",
    },
    Binding {
        keys: &[Key(KeyCode::Backspace, N)],
        action: Action::PromptBackspace,
        scope: Scope::Prompt,
        hint: "",
        help: "delete the last character (the whole text when it is still selected)",
    },
    Binding {
        keys: &[Key(KeyCode::Char('u'), C)],
        action: Action::PromptClear,
        scope: Scope::Prompt,
        hint: "Ctrl-u clear",
        help: "clear the text",
    },
    Binding {
        keys: &[k('y'), Key(KeyCode::Enter, N)],
        action: Action::ConfirmYes,
        scope: Scope::Confirm,
        hint: "yes",
        help: "yes: do it",
    },
    Binding {
        keys: &[k('n'), Key(KeyCode::Esc, N)],
        action: Action::ConfirmNo,
        scope: Scope::Confirm,
        hint: "no",
        help: "no: do nothing",
    },
    Binding {
        keys: &[Key(KeyCode::Char('c'), C)],
        action: Action::ForceQuit,
        scope: Scope::Confirm,
        hint: "",
        help: "in the quit dialog: quit at once (a second Ctrl-C)",
    },
    Binding {
        keys: &[k('?'), Key(KeyCode::Esc, N), k('q')],
        action: Action::CloseHelp,
        scope: Scope::Help,
        hint: "? Esc q close · j/k scroll",
        help: "close the help (Esc clears a search first)",
    },
];

/// Pairs (a narrower binding, an `Anywhere` one) allowed to share a key: in the narrower
/// binding's contexts it wins. Empty today; a shadow must be declared here to pass the test.
pub const SHADOWS: &[(Action, Action)] = &[];

/// The action a key does in a context (a narrower scope wins over `Anywhere`).
pub fn action_for(ev: &KeyEvent, ctx: Context) -> Option<Action> {
    let find = |anywhere: bool| {
        bindings_for(ctx)
            .filter(|b| (b.scope == Scope::Anywhere) == anywhere)
            .find(|b| b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    };
    find(false).or_else(|| find(true))
}

/// The bindings that act in a context, for key handling, the status bar and help.
pub fn bindings_for(ctx: Context) -> impl Iterator<Item = &'static Binding> {
    KEYMAP.iter().filter(move |b| b.scope.covers(ctx))
}

/// The status bar's hints in a context: only keys that act there.
pub fn hints(ctx: Context) -> Vec<&'static str> {
    bindings_for(ctx)
        .filter(|b| !b.hint.is_empty())
        .map(|b| b.hint)
        .collect()
}

/// What j/k do in a context, for the status bar (the moves are bound everywhere, their
/// meaning differs): `j/k build` in the inspector, `j/k scroll` in a text. The inspector's
/// also names its own keys, so that they fit at 80 columns (the status bar leaves out the
/// hints it repeats).
pub fn nav_hint(ctx: Context) -> Option<&'static str> {
    match ctx {
        Context::Grid => Some("hjkl move"),
        Context::List | Context::Failures => Some("j/k move"),
        Context::Log | Context::Merged | Context::Dockerfile => Some("j/k PgUp/PgDn g/G scroll"),
        Context::Inspector => Some("j/k build · D diff base · / search · i close"),
        Context::Prompt | Context::Confirm | Context::Help => None,
    }
}

/// A popup's footer from its context's bindings: `y / Enter: yes    n / Esc: no`.
pub fn footer(ctx: Context) -> String {
    bindings_for(ctx)
        .filter(|b| !b.hint.is_empty())
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
            format!("{}: {}", keys.join(" / "), b.hint)
        })
        .collect::<Vec<_>>()
        .join("    ")
}

/// The help's sections for a view: the scopes that act in it, in help order.
pub fn sections_for(ctx: Context) -> impl Iterator<Item = Scope> {
    Scope::ALL.into_iter().filter(move |s| s.covers(ctx))
}

/// docs/keybindings.md, generated from the keymap.
pub fn markdown() -> String {
    let mut s = String::from("# Keybindings\n\nGenerated from the keymap in `src/ui/keymap.rs` by `imagegrid keys`; a test fails when this file drifts.\nThe `?` help and the status bar show only the keys that act in the current view.\n");
    for scope in Scope::ALL {
        s.push_str(&format!(
            "\n## {}\n\n| keys | action |\n|---|---|\n",
            scope.title()
        ));
        for b in KEYMAP.iter().filter(|b| b.scope == scope) {
            let keys: Vec<String> = b.keys.iter().map(|k| format!("`{}`", k.label())).collect();
            s.push_str(&format!("| {} | {} |\n", keys.join(" "), b.help));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two bindings acting in one context never share a key, unless the pair is declared in
    /// [`SHADOWS`] (a narrower binding shadowing an `Anywhere` one).
    #[test]
    fn no_duplicate_keys_per_context() {
        let clashes = |keymap: &[Binding], shadows: &[(Action, Action)]| {
            let mut out = vec![];
            for (i, a) in keymap.iter().enumerate() {
                for b in &keymap[i + 1..] {
                    let overlap = Context::VIEWS
                        .iter()
                        .chain(&[Context::Prompt, Context::Confirm, Context::Help])
                        .any(|c| a.scope.covers(*c) && b.scope.covers(*c));
                    let declared = shadows.contains(&(a.action, b.action))
                        || shadows.contains(&(b.action, a.action));
                    if overlap && !declared {
                        for ka in a.keys.iter().filter(|k| b.keys.contains(k)) {
                            out.push(format!(
                                "{} bound twice: {:?} and {:?}",
                                ka.label(),
                                a.action,
                                b.action
                            ));
                        }
                    }
                }
            }
            out
        };
        let found = clashes(KEYMAP, SHADOWS);
        assert!(found.is_empty(), "{found:?}");
        // A grid binding on an `Anywhere` key is caught, and passes once declared.
        const K: &[Key] = &[k('k')];
        let shadowing = [
            KEYMAP[0],
            Binding {
                keys: K,
                action: Action::Visual,
                scope: Scope::Grid,
                hint: "",
                help: "",
            },
        ];
        assert_eq!(clashes(&shadowing, &[]).len(), 1);
        assert!(clashes(&shadowing, &[(Action::Visual, Action::Up)]).is_empty());
    }

    #[test]
    fn context_wins() {
        let slash = KeyEvent::new(KeyCode::Char('/'), N);
        assert_eq!(action_for(&slash, Context::Grid), Some(Action::Filter));
        assert_eq!(action_for(&slash, Context::Log), Some(Action::Search));
        let shift_g = KeyEvent::new(KeyCode::Char('G'), S);
        assert_eq!(action_for(&shift_g, Context::Grid), Some(Action::Bottom));
    }

    fn slash_key() -> KeyEvent {
        KeyEvent::new(KeyCode::Char('/'), N)
    }

    #[test]
    fn keys_act_only_where_they_mean_something() {
        let o = KeyEvent::new(KeyCode::Char('o'), N);
        assert_eq!(action_for(&o, Context::List), Some(Action::SortBy));
        assert_eq!(action_for(&o, Context::Grid), None);
        let d = KeyEvent::new(KeyCode::Char('D'), S);
        assert_eq!(action_for(&d, Context::Inspector), Some(Action::DiffBase));
        assert_eq!(action_for(&d, Context::Log), None);
        assert!(!hints(Context::Grid).contains(&"o sort"));
        assert!(hints(Context::List).contains(&"o sort"));
        assert!(!hints(Context::Dockerfile).contains(&"f follow"));
        // The Dockerfile scrolls, searches and wraps with the log's keys.
        let w = KeyEvent::new(KeyCode::Char('w'), N);
        assert_eq!(action_for(&w, Context::Dockerfile), Some(Action::Wrap));
        assert_eq!(
            action_for(&slash_key(), Context::Dockerfile),
            Some(Action::Search)
        );
        let j = KeyEvent::new(KeyCode::Char('j'), N);
        assert_eq!(action_for(&j, Context::Help), Some(Action::Down));
        let esc = KeyEvent::new(KeyCode::Esc, N);
        assert_eq!(action_for(&esc, Context::Help), Some(Action::CloseHelp));
        assert_eq!(action_for(&esc, Context::Grid), Some(Action::Back));
        assert_eq!(action_for(&esc, Context::Log), Some(Action::Back));
        let ctrl_u = KeyEvent::new(KeyCode::Char('u'), C);
        assert_eq!(
            action_for(&ctrl_u, Context::Prompt),
            Some(Action::PromptClear)
        );
        // Prompts type what is not bound; confirms answer only yes or no.
        let q = KeyEvent::new(KeyCode::Char('q'), N);
        assert_eq!(action_for(&q, Context::Prompt), None);
        assert_eq!(action_for(&q, Context::Confirm), None);
        assert_eq!(footer(Context::Confirm), "y / Enter: yes    n / Esc: no");
    }
}
