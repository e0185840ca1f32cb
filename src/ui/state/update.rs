//! Updates: engine and publish events, loaded data, keys (by mode), the mouse, and what the
//! focused cell needs loaded.

use super::*;

impl App {
    /// Fold one engine event into the state: the shared reducer first, then what only the
    /// TUI keeps (logs in memory, the status line).
    pub fn on_event(&mut self, ev: BuildEvent) {
        match &ev {
            BuildEvent::Started { cell, .. } => {
                self.log_requested.remove(cell.as_str());
                self.logs.insert(cell.to_string(), new_log());
            }
            BuildEvent::Log { cell, line } => {
                self.merged.push(format!("{cell} | {line}"));
                if self.progress.cells.contains_key(cell.as_str()) {
                    self.logs
                        .entry(cell.to_string())
                        .or_insert_with(new_log)
                        .push(line.clone());
                }
                self.refresh_search_if_shown(cell);
            }
            BuildEvent::Finished(r) if r.log_path.is_some() => {
                if self.focused().as_deref() == Some(r.cell.as_str()) {
                    self.log_requested.insert(r.cell.to_string());
                } else {
                    // Nobody is looking: the log is on disk, read again on focus.
                    self.logs.remove(r.cell.as_str());
                }
            }
            _ => {}
        }
        match self.progress.apply(&ev) {
            Notice::Retrying { cell, reason, .. } => {
                self.message = Some(format!("{cell}: {reason}"));
            }
            Notice::Transfer { cell, line } => {
                self.merged.push(format!("{cell} | {line}"));
                self.message = Some(format!("{cell}: {line}"));
            }
            Notice::Storage(message) => self.message = Some(format!("storage: {message}")),
            Notice::Done(s) => self.message = Some(format!("run done: {}", summary_line(&s))),
            Notice::EngineDown { .. } | Notice::None => {}
        }
    }

    /// Fold one publish event into the state: progress on the status line.
    pub fn on_publish_event(&mut self, ev: PublishEvent) {
        let p = self.publishing.get_or_insert_with(PublishProgress::default);
        let text = match &ev {
            PublishEvent::Planned { pushes, .. } => {
                p.pushes = *pushes;
                ev.line()
            }
            PublishEvent::PushStarted {
                cell,
                engine,
                index,
                total,
                ..
            } => format!("publish: pushing {cell} from {engine} ({index}/{total})"),
            PublishEvent::Pushed { .. } => {
                p.pushed += 1;
                format!("publish: {} ({}/{})", ev.line(), p.pushed, p.pushes)
            }
            PublishEvent::ManifestPushed { .. } | PublishEvent::AliasPushed { .. } => {
                p.published += 1;
                format!("publish: {}", ev.line())
            }
            PublishEvent::NotPublished { .. } => {
                p.not_published += 1;
                format!("publish: {}", ev.line())
            }
            PublishEvent::PushFailed { .. } | PublishEvent::Retrying { .. } => {
                format!("publish: {}", ev.line())
            }
            PublishEvent::Done(_) => {
                self.publishing = None;
                format!("publish {}", ev.line())
            }
        };
        self.message = Some(text);
    }

    /// A rendered Dockerfile arrived; shown if the Dockerfile view still wants that cell.
    pub fn on_dockerfile_loaded(&mut self, cell: String, text: String) {
        // A stale cell's reasons (and its Dockerfile diff against its last success) first.
        let text = match self.progress.cells.get(&cell).filter(|c| c.stale) {
            Some(c) if !c.why.is_empty() => crate::why::recorded::why_text(&c.why) + &text,
            _ => text,
        };
        if let Detail::Dockerfile(d) = &mut self.detail {
            d.arrive(&cell, text);
        }
        if self.log_view.search.is_some() {
            self.recompute_matches();
        }
    }

    /// The plan file was read again: the grid shows its matrix, with the history's last state
    /// of each cell and why cells are stale; the cells the new plan changed (`changed`) say
    /// "changed by plan". Engines stay as they are; the selection keeps the cells that remain.
    pub fn on_plan_reloaded(
        &mut self,
        matrix: Matrix,
        history: &crate::session::HistoryView,
        changed: &crate::why::Reasons,
    ) {
        let mut progress = RunProgress::new(&matrix, &history.latest, &history.stale);
        progress.set_previous_sizes(&history.previous_size);
        progress.set_reasons(&history.reasons);
        progress.set_reasons(changed);
        progress.engines = std::mem::take(&mut self.progress.engines);
        progress.built = crate::publish::plan::built_from_history(&history.last_success);
        let (before, after) = (self.matrix.cells.len(), matrix.cells.len());
        self.selection.retain(|id| matrix.cell(id).is_some());
        self.columns = matrix.columns();
        self.matrix = matrix;
        self.progress = progress;
        self.move_focus(0, 0);
        self.message = Some(format!(
            "plan read again: {} cells changed by plan ({before} cells before, {after} now)",
            changed.len()
        ));
    }

    /// A publish stopped on an error (credentials, registry).
    pub fn on_publish_failed(&mut self, error: &str) {
        self.publishing = None;
        self.message = Some(format!("publish stopped: {error}"));
    }

    /// Handle a key; returns what the runtime must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let mut fx = self.on_key_inner(key);
        fx.extend(self.focus_effects());
        fx
    }

    /// What the focused cell needs loaded: its stored log, or its Dockerfile.
    pub fn focus_effects(&mut self) -> Vec<Effect> {
        let Some(id) = self.focused() else {
            return vec![];
        };
        let unfocused: Vec<String> = self
            .log_requested
            .iter()
            .filter(|c| **c != id)
            .cloned()
            .collect();
        for cell in unfocused {
            self.log_requested.remove(&cell);
            if let Some(c) = self.progress.cells.get(&cell) {
                if !c.status.is_active() && c.log_path.is_some() {
                    self.logs.remove(&cell);
                }
            }
        }
        match &mut self.detail {
            Detail::Inspector(l) if l.cell() != Some(id.as_str()) => {
                *l = Loadable::Loading(id.clone());
                return vec![Effect::LoadHistory(id)];
            }
            // `d` on a cell shows that cell's Dockerfile; moving to another cell shows its
            // log again, so that `d` there means its Dockerfile too, never its log.
            Detail::Dockerfile(l) if l.cell().is_some_and(|c| c != id) => {
                self.detail = Detail::Log;
                self.reset_text_view();
            }
            Detail::Dockerfile(l) if l.cell().is_none() => {
                *l = Loadable::Loading(id.clone());
                return vec![Effect::LoadDockerfile(id)];
            }
            Detail::Inspector(_) | Detail::Dockerfile(_) => return vec![],
            Detail::Log | Detail::Merged => {}
        }
        let Some(c) = self.progress.cells.get(&id) else {
            return vec![];
        };
        match &c.log_path {
            Some(path)
                if self.logs.get(&id).is_none_or(|l| l.is_empty())
                    && !c.status.is_active()
                    && !self.log_requested.contains(&id) =>
            {
                self.log_requested.insert(id.clone());
                vec![Effect::LoadLog {
                    cell: id,
                    path: path.clone(),
                }]
            }
            _ => vec![],
        }
    }

    /// A cell's successful builds arrived for the inspector (oldest first).
    pub fn on_history_loaded(&mut self, cell: &str, builds: Vec<BuildRecord>) {
        if let Detail::Inspector(l) = &mut self.detail {
            let inspector = Inspector {
                cursor: builds.len().saturating_sub(1),
                base: None,
                builds,
                layers_top: 0,
                search: None,
            };
            l.arrive(cell, inspector);
        }
    }

    /// A stored log's tail arrived: show it unless a new build has started meanwhile.
    pub fn on_log_loaded(&mut self, cell: &str, lines: Vec<String>, skipped_lines: u64) {
        if !self.log_requested.contains(cell) {
            return; // focus moved on while it was read: not wanted any more
        }
        let Some(c) = self.progress.cells.get(cell) else {
            return;
        };
        let log = self.logs.entry(cell.to_string()).or_insert_with(new_log);
        if log.is_empty() && !c.status.is_active() {
            if skipped_lines > 0 {
                log.push(format!(
                    "… {skipped_lines} earlier lines are in the log file"
                ));
            }
            for l in lines {
                log.push(l);
            }
        }
    }

    pub(super) fn on_key_inner(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.mode.clone() {
            Mode::Help => {
                match action_for(&key, Context::Help) {
                    // Esc clears a search before it closes the help.
                    Some(Action::CloseHelp)
                        if key.code == KeyCode::Esc && self.help_search.is_some() =>
                    {
                        self.search_help("")
                    }
                    Some(Action::CloseHelp) => {
                        self.mode = Mode::Normal;
                        self.help_search = None;
                    }
                    Some(Action::Search) => {
                        self.search_in = Context::Help;
                        let old = self.help_search.as_ref().map(|s| s.query.clone());
                        self.mode = Mode::Search(Prompt::reopen(&old.unwrap_or_default()));
                    }
                    Some(a @ (Action::NextMatch | Action::PrevMatch)) => {
                        self.step_help_match(a == Action::NextMatch)
                    }
                    Some(a) => self.scroll_help(a),
                    None => {}
                }
                vec![]
            }
            Mode::Confirm(c) => self.on_confirm_key(c, key),
            Mode::Filter(p) => self.on_prompt_key(p, key, |app, t| {
                app.set_filter(t);
            }),
            Mode::Selector(p) => self.on_prompt_key(p, key, |app, t| app.select_by_text(&t)),
            Mode::Search(p) => {
                let fx = self.on_prompt_key(p, key, |app, t| match app.search_in {
                    Context::Help => app.search_help(&t),
                    Context::Inspector => app.search_inspector(&t),
                    _ => {
                        app.log_view.search = Some(t).filter(|t| !t.is_empty());
                        app.recompute_matches();
                        app.jump_to_match(0);
                    }
                });
                // A search of the help goes back to the help, applied or not.
                if self.search_in == Context::Help && self.mode == Mode::Normal {
                    self.mode = Mode::Help;
                }
                fx
            }
            Mode::Normal => match action_for(&key, self.context()) {
                Some(a) => {
                    // A message answers the action before: the next one replaces it.
                    self.message = None;
                    self.act(a)
                }
                None => vec![],
            },
        }
    }

    /// Scroll the help popup (its largest first line is the last frame's).
    fn scroll_help(&mut self, a: Action) {
        let max = self.geometry.help_max_top as isize;
        let page = (self.geometry.help_max_top.max(1) as isize).min(10);
        let top = self.help_top as isize;
        let new = match a {
            Action::Up => top - 1,
            Action::Down => top + 1,
            Action::PageUp => top - page,
            Action::PageDown => top + page,
            Action::Top => 0,
            Action::Bottom => max,
            _ => top,
        };
        self.help_top = new.clamp(0, max.max(0)) as usize;
    }

    pub(super) fn on_prompt_key(
        &mut self,
        mut prompt: Prompt,
        key: KeyEvent,
        apply: impl FnOnce(&mut App, String),
    ) -> Vec<Effect> {
        let set = |app: &mut App, p: Prompt| {
            app.mode = match app.mode {
                Mode::Filter(_) => Mode::Filter(p),
                Mode::Selector(_) => Mode::Selector(p),
                Mode::Search(_) => Mode::Search(p),
                ref m => m.clone(),
            }
        };
        match action_for(&key, Context::Prompt) {
            Some(Action::PromptCancel) => self.mode = Mode::Normal,
            Some(Action::PromptApply) => {
                self.mode = Mode::Normal;
                apply(self, prompt.text);
            }
            Some(Action::PromptBackspace) => {
                prompt.backspace();
                set(self, prompt);
            }
            Some(Action::PromptClear) => {
                prompt.clear();
                set(self, prompt);
            }
            // Keys the prompt does not bind type.
            None => match key.code {
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    prompt.type_char(c);
                    set(self, prompt);
                }
                // Moving the cursor keeps the old text and types after it.
                KeyCode::Right | KeyCode::End | KeyCode::Left | KeyCode::Home => {
                    prompt.selected = false;
                    set(self, prompt);
                }
                _ => {}
            },
            Some(_) => {}
        }
        vec![]
    }

    pub(super) fn on_confirm_key(&mut self, c: Confirm, key: KeyEvent) -> Vec<Effect> {
        let action = action_for(&key, Context::Confirm);
        if action == Some(Action::ForceQuit) && matches!(c, Confirm::Quit { .. }) {
            self.mode = Mode::Normal;
            self.quit = true;
            return vec![Effect::Quit];
        }
        let yes = action == Some(Action::ConfirmYes);
        let no = action == Some(Action::ConfirmNo);
        if !yes && !no {
            return vec![];
        }
        self.mode = Mode::Normal;
        if no {
            self.message = Some(
                match c {
                    Confirm::Build { .. } => "build not started",
                    Confirm::Cancel { .. } => "nothing cancelled: the builds go on",
                    Confirm::Publish { .. } => "publish not started",
                    Confirm::Quit { .. } => "not quitting",
                }
                .into(),
            );
            return vec![];
        }
        match c {
            Confirm::Build { cells, no_cache } => {
                self.message = Some(format!(
                    "queued {}{}",
                    crate::util::words::count(cells.len(), "cell", "cells"),
                    if no_cache { " (no cache)" } else { "" }
                ));
                self.selection.clear();
                vec![Effect::Build { cells, no_cache }]
            }
            Confirm::Cancel { cells } => {
                self.message = Some(format!(
                    "cancelling {}",
                    crate::util::words::count(cells.len(), "build", "builds")
                ));
                vec![Effect::Cancel(cells)]
            }
            Confirm::Publish { plan, tags, .. } => {
                let n = tags.iter().filter(|t| t.blocked.is_none()).count();
                self.message = Some(format!(
                    "publishing {}…",
                    crate::util::words::count(n, "tag or alias", "tags and aliases")
                ));
                self.publishing = Some(PublishProgress::default());
                self.selection.clear();
                vec![Effect::Publish { plan }]
            }
            Confirm::Quit { .. } => {
                self.quit = true;
                vec![Effect::Quit]
            }
        }
    }

    /// Mouse: click focuses a cell, the wheel moves or scrolls.
    pub fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let mut fx = self.on_mouse_inner(m);
        fx.extend(self.focus_effects());
        fx
    }
}
