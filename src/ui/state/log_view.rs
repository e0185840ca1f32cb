//! The log view: follow, scroll, search and its matches.

use super::*;

/// Scroll state of the log view.
#[derive(Debug, Clone, PartialEq)]
pub struct LogView {
    /// Stick to the end as lines arrive.
    pub follow: bool,
    /// Index of the top line shown when not following.
    pub top: usize,
    pub wrap: bool,
    pub search: Option<String>,
    /// Line indexes matching the search.
    pub matches: Vec<usize>,
    pub current_match: usize,
}

impl Default for LogView {
    fn default() -> Self {
        LogView {
            follow: true,
            top: 0,
            wrap: false,
            search: None,
            matches: vec![],
            current_match: 0,
        }
    }
}

impl LogView {
    /// The view of a text read from its top (a Dockerfile), keeping the wrap setting.
    pub fn from_top(wrap: bool) -> LogView {
        LogView {
            follow: false,
            wrap,
            ..LogView::default()
        }
    }
}

impl App {
    /// The scroll state a newly shown text starts with: a log follows its end, a
    /// Dockerfile is read from its top; the wrap setting stays.
    pub(super) fn reset_text_view(&mut self) {
        let wrap = self.log_view.wrap;
        self.log_view = if matches!(self.detail, Detail::Dockerfile(_)) {
            LogView::from_top(wrap)
        } else {
            LogView {
                wrap,
                ..LogView::default()
            }
        };
    }

    pub(super) fn refresh_search_if_shown(&mut self, cell: &str) {
        let shown = match self.detail {
            Detail::Merged => true,
            Detail::Log => self.focused().as_deref() == Some(cell),
            Detail::Dockerfile(_) | Detail::Inspector(_) => false,
        };
        if shown && self.log_view.search.is_some() {
            self.recompute_matches();
        }
    }

    pub(super) fn recompute_matches(&mut self) {
        let Some(q) = self.log_view.search.clone().filter(|q| !q.is_empty()) else {
            self.log_view.matches.clear();
            return;
        };
        let q = q.to_lowercase();
        let matches: Vec<usize> = self
            .shown_lines()
            .iter()
            .enumerate()
            .filter(|(_, line)| strip_sgr(line).to_lowercase().contains(&q))
            .map(|(i, _)| i)
            .collect();
        self.log_view.matches = matches;
        if self.log_view.current_match >= self.log_view.matches.len() {
            self.log_view.current_match = 0;
        }
    }

    pub(super) fn scroll_log(&mut self, delta: isize) {
        let len = self.shown_len();
        let bottom = len.saturating_sub(self.geometry.log_height);
        let top = if self.log_view.follow {
            bottom
        } else {
            self.log_view.top
        };
        let new_top = (top as isize + delta).clamp(0, bottom as isize) as usize;
        self.log_view.top = new_top;
        // Scrolling up stops following; reaching the end resumes it.
        self.log_view.follow = new_top >= bottom;
    }

    pub(super) fn jump_to_match(&mut self, idx: usize) {
        if self.log_view.matches.is_empty() {
            if self.log_view.search.is_some() {
                self.message = Some("no match".into());
            }
            return;
        }
        let n = self.log_view.matches.len();
        self.log_view.current_match = idx % n;
        let line = self.log_view.matches[self.log_view.current_match];
        self.log_view.follow = false;
        self.log_view.top = line.saturating_sub(self.geometry.log_height / 2);
    }
}
