//! Actions: what each keymap action does to the state.

use super::*;

impl App {
    pub(super) fn move_focus(&mut self, dr: isize, dc: isize) {
        let rows = self.visible_rows().len();
        if rows == 0 {
            return;
        }
        let before = self.focused();
        self.row = (self.row as isize + dr).clamp(0, rows as isize - 1) as usize;
        self.col = (self.col as isize + dc).clamp(0, self.columns.len() as isize - 1) as usize;
        // The Dockerfile view is one cell's: another cell shows its log (focus_effects()
        // does the same for focus moved otherwise), so `d` there means its Dockerfile.
        if matches!(self.detail, Detail::Dockerfile(_)) && self.focused() != before {
            self.detail = Detail::Log;
        }
        self.reset_text_view();
    }

    /// Move a list cursor (list view, inspector builds) by `d`, clamped to `n` rows.
    fn move_cursor(cursor: &mut usize, n: usize, d: isize) {
        *cursor = (*cursor as isize + d).clamp(0, n.saturating_sub(1) as isize) as usize;
    }

    /// How far an action moves a list cursor, if it is a move.
    fn cursor_delta(a: Action, page: isize) -> Option<isize> {
        Some(match a {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -page,
            Action::PageDown => page,
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            _ => return None,
        })
    }

    /// Do an action.
    pub fn act(&mut self, a: Action) -> Vec<Effect> {
        let in_detail = self.pane == Pane::Detail;
        let page = self.geometry.log_height.max(1) as isize;
        let cursor_move = Self::cursor_delta(a, page);
        if !in_detail {
            if let Some(fx) = self.failures_act(a) {
                return fx;
            }
        }
        match a {
            Action::Failures => self.toggle_failures(),
            // Only the failures view has these (handled above).
            Action::SelectCause | Action::CloseFailures => {}
            _ if cursor_move.is_some()
                && in_detail
                && matches!(self.detail, Detail::Inspector(_)) =>
            {
                if let Detail::Inspector(Loadable::Ready(_, i)) = &mut self.detail {
                    let (n, mut c) = (i.builds.len(), i.cursor);
                    Self::move_cursor(&mut c, n, cursor_move.unwrap_or(0));
                    i.set_cursor(c);
                }
            }
            _ if cursor_move.is_some() && self.list.is_some() && !in_detail => {
                let n = self.list_cells().len();
                Self::move_cursor(&mut self.list_cursor, n, cursor_move.unwrap_or(0));
            }
            Action::Up if in_detail => self.scroll_log(-1),
            Action::Down if in_detail => self.scroll_log(1),
            Action::PageUp if in_detail => self.scroll_log(-page),
            Action::PageDown if in_detail => self.scroll_log(page),
            Action::Top if in_detail => self.scroll_log(isize::MIN / 2),
            Action::Bottom if in_detail => {
                self.log_view.follow = true;
            }
            Action::Up => self.move_focus(-1, 0),
            Action::Down => self.move_focus(1, 0),
            Action::Left => self.move_focus(0, -1),
            Action::Right => self.move_focus(0, 1),
            Action::Top => self.move_focus(isize::MIN / 2, 0),
            Action::Bottom => self.move_focus(isize::MAX / 2, 0),
            Action::PageUp => self.move_focus(-10, 0),
            Action::PageDown => self.move_focus(10, 0),
            Action::RowStart => self.move_focus(0, isize::MIN / 2),
            Action::RowEnd => self.move_focus(0, isize::MAX / 2),
            Action::NextArch | Action::PrevArch => {
                let n = self.matrix.arches.len().max(1);
                self.arch = if a == Action::NextArch {
                    (self.arch + 1) % n
                } else {
                    (self.arch + n - 1) % n
                };
                self.move_focus(0, 0);
            }
            Action::ToggleArchView => self.all_arches = !self.all_arches,
            Action::ToggleSelect => {
                let rows = self.visible_rows();
                if let Some(d) = rows.get(self.row).map(|s| s.to_string()) {
                    let ids: Vec<String> = self
                        .cells_at(&d, self.col)
                        .iter()
                        .map(|c| c.id.clone())
                        .collect();
                    let all_in = ids.iter().all(|i| self.selection.contains(i));
                    for i in ids {
                        if all_in {
                            self.selection.remove(&i);
                        } else {
                            self.selection.insert(i);
                        }
                    }
                }
            }
            Action::Visual => {
                if self.visual_anchor.is_some() {
                    let ids = self.visual_cells();
                    self.message = Some(format!(
                        "selected a range of {}",
                        crate::util::words::count(ids.len(), "cell", "cells")
                    ));
                    self.selection.extend(ids);
                    self.visual_anchor = None;
                } else {
                    self.visual_anchor = Some((self.row, self.col));
                    self.message = Some("visual: move, then v to select the range".into());
                }
            }
            Action::SelectRow => {
                if let Some(d) = self.visible_rows().get(self.row).map(|s| s.to_string()) {
                    let all = self.all_arches;
                    let arch = self.current_arch().to_string();
                    self.toggle_where(&format!("row {d}"), |c, _| {
                        c.distro == d && (all || c.arch == arch)
                    });
                }
            }
            Action::SelectColumn => {
                let column = self.columns[self.col].clone();
                let rows: BTreeSet<String> =
                    self.visible_rows().iter().map(|s| s.to_string()).collect();
                let all = self.all_arches;
                let arch = self.current_arch().to_string();
                self.toggle_where(&format!("column {column}"), |c, _| {
                    c.version_part() == column
                        && rows.contains(&c.distro)
                        && (all || c.arch == arch)
                });
            }
            Action::SelectFailed => {
                let n = self.select_where(|c, v| c.in_all() && v.status.is_failed());
                self.message = Some(format!(
                    "{} selected",
                    crate::util::words::count(n, "failed cell", "failed cells")
                ));
            }
            Action::SelectStale => {
                let n = self.select_where(|c, v| c.in_all() && v.stale);
                self.message = Some(format!(
                    "{} selected",
                    crate::util::words::count(n, "stale cell", "stale cells")
                ));
            }
            Action::SelectArch => {
                let arch = self.current_arch().to_string();
                self.select_where(|c, _| c.arch == arch);
            }
            Action::SelectBySelector => self.mode = Mode::Selector(Prompt::empty()),
            Action::Back => self.back(),
            Action::Zoom => self.toggle_zoom(),
            Action::ClearSelection => {
                self.selection.clear();
                self.visual_anchor = None;
            }
            Action::Build | Action::RebuildNoCache => {
                let cells = self.targets();
                if cells.is_empty() {
                    self.message = Some("nothing to build: no cell here for this arch".into());
                } else {
                    self.mode = Mode::Confirm(Confirm::Build {
                        cells,
                        no_cache: a == Action::RebuildNoCache,
                    });
                }
            }
            Action::RetryFailed => {
                let cells: Vec<String> = self
                    .matrix
                    .cells
                    .iter()
                    .filter(|c| c.in_all() && self.progress.is_failed(&c.id))
                    .map(|c| c.id.clone())
                    .collect();
                if cells.is_empty() {
                    self.message = Some("no failed cell".into());
                } else {
                    self.mode = Mode::Confirm(Confirm::Build {
                        cells,
                        no_cache: false,
                    });
                }
            }
            Action::Cancel => {
                let cells: Vec<String> = self
                    .targets()
                    .into_iter()
                    .filter(|id| self.progress.cells[id].status.is_active())
                    .collect();
                if cells.is_empty() {
                    self.message = Some(
                        "nothing to cancel: no queued or running build among the targets".into(),
                    );
                } else {
                    self.mode = Mode::Confirm(Confirm::Cancel { cells });
                }
            }
            Action::Publish => self.ask_publish(),
            Action::ReloadPlan => {
                if self.matrix.plan.is_none() {
                    self.message = Some(
                        "no plan to read again: the grid is the built-in catalog (--plan FILE)"
                            .into(),
                    );
                } else if self.active_count() > 0 {
                    self.message =
                        Some("a run is under way: read the plan again once it has ended".into());
                } else {
                    self.message = Some("reading the plan again…".into());
                    return vec![Effect::ReloadPlan];
                }
            }
            Action::Filter => self.mode = Mode::Filter(Prompt::reopen(&self.filter)),
            Action::FocusDetail => self.pane = Pane::Detail,
            Action::FocusGrid => self.pane = Pane::Grid,
            Action::ShowDockerfile => {
                self.detail = if matches!(self.detail, Detail::Dockerfile(_)) {
                    self.pane = Pane::Grid;
                    Detail::Log
                } else {
                    // The keyboard goes with it: j/k scroll it, / searches it, w wraps it.
                    // focus_effects() asks for the focused cell's Dockerfile.
                    self.pane = Pane::Detail;
                    Detail::Dockerfile(Loadable::Wanted)
                };
                self.reset_text_view();
            }
            Action::MergedLogs => {
                self.detail = if self.detail == Detail::Merged {
                    Detail::Log
                } else {
                    Detail::Merged
                };
                self.reset_text_view();
            }
            Action::Follow => self.log_view.follow = true,
            Action::Wrap => {
                self.log_view.wrap = !self.log_view.wrap;
                self.message = Some(
                    if self.log_view.wrap {
                        "wrap on: long lines wrap"
                    } else {
                        "wrap off: long lines are cut"
                    }
                    .into(),
                );
            }
            Action::Search => {
                self.search_in = self.view_context();
                let old = match self.inspector_search() {
                    Some(s) => s.query.clone(),
                    None if self.search_in == Context::Inspector => String::new(),
                    None => self.log_view.search.clone().unwrap_or_default(),
                };
                self.mode = Mode::Search(Prompt::reopen(&old))
            }
            Action::NextMatch | Action::PrevMatch if self.view_context() == Context::Inspector => {
                self.step_inspector_match(a == Action::NextMatch)
            }
            Action::NextMatch => self.jump_to_match(self.log_view.current_match + 1),
            Action::PrevMatch => {
                let n = self.log_view.matches.len().max(1);
                self.jump_to_match(self.log_view.current_match + n - 1)
            }
            Action::FirstError => {
                let hit = self
                    .shown_log()
                    .and_then(|l| l.iter().position(|line| is_error_line(&strip_sgr(line))));
                match hit {
                    Some(i) => {
                        self.log_view.follow = false;
                        self.log_view.top = i.saturating_sub(2);
                    }
                    None => self.message = Some("no error line in the log held in memory".into()),
                }
            }
            Action::SaveLog => {
                if let Some(id) = self.focused() {
                    return vec![Effect::SaveLog { cell: id }];
                }
            }
            Action::ToggleMouse => {
                self.mouse_capture = !self.mouse_capture;
                self.message = Some(
                    if self.mouse_capture {
                        "mouse capture on"
                    } else {
                        "mouse capture off: the terminal selects text"
                    }
                    .into(),
                );
                return vec![Effect::SetMouse(self.mouse_capture)];
            }
            Action::Inspect => {
                self.detail = if matches!(self.detail, Detail::Inspector(_)) {
                    self.pane = Pane::Grid;
                    Detail::Log
                } else {
                    // The keyboard goes with it: j/k move between builds, D pins a base.
                    // focus_effects() asks for the focused cell's history.
                    self.pane = Pane::Detail;
                    Detail::Inspector(Loadable::Wanted)
                };
                self.reset_text_view();
            }
            Action::HeatMap => {
                self.heat = match self.heat {
                    Heat::Status => Heat::Size,
                    Heat::Size => Heat::Growth,
                    Heat::Growth => Heat::Cause,
                    Heat::Cause => Heat::Status,
                };
                let what = match self.heat {
                    Heat::Status => "heat map off: the grid shows status",
                    Heat::Size => "heat map: size (legend under the grid)",
                    Heat::Growth => "heat map: growth (legend under the grid)",
                    Heat::Cause => {
                        "grid coloured by failure cause (one letter per cause, C lists them)"
                    }
                };
                self.message = Some(what.into());
            }
            Action::ListView => {
                self.list = if self.list.is_some() {
                    None
                } else {
                    Some(SortKey::Size)
                };
                self.list_cursor = 0;
            }
            Action::SortBy => {
                if let Some(k) = self.list {
                    self.list = Some(if k == SortKey::Size {
                        SortKey::Growth
                    } else {
                        SortKey::Size
                    });
                    self.list_cursor = 0;
                }
            }
            Action::DiffBase => {
                if let Detail::Inspector(Loadable::Ready(_, i)) = &mut self.detail {
                    i.base = Some(i.cursor);
                    self.message = Some("diff base set: move to another build to compare".into());
                }
            }
            Action::Help => {
                self.help_top = 0;
                self.help_search = None;
                self.mode = Mode::Help;
            }
            // Prompt, confirm and help keys are handled in their modes, never here.
            Action::PromptApply
            | Action::PromptCancel
            | Action::PromptBackspace
            | Action::PromptClear
            | Action::ForceQuit
            | Action::ConfirmYes
            | Action::ConfirmNo
            | Action::CloseHelp => {}
            Action::Quit => {
                let active = self.active_count();
                if active > 0 {
                    self.mode = Mode::Confirm(Confirm::Quit { active });
                } else {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
            }
        }
        vec![]
    }
}
