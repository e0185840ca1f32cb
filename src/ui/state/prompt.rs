//! The text of a prompt (filter, selector, search): a prompt reopened on its old text opens
//! with that text selected, so that typing replaces it and Backspace clears it; `Ctrl-u`
//! clears it at any time.

/// A prompt's text and whether it is still wholly selected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// The old text, shown selected: the next character replaces it.
    pub selected: bool,
}

impl Prompt {
    /// An empty prompt.
    pub fn empty() -> Prompt {
        Prompt::default()
    }

    /// A prompt on old text, selected (an empty old text is simply empty).
    pub fn reopen(old: &str) -> Prompt {
        Prompt {
            text: old.to_string(),
            selected: !old.is_empty(),
        }
    }

    /// Type a character: it replaces the selected text, else it is appended.
    pub fn type_char(&mut self, c: char) {
        if self.selected {
            self.text.clear();
            self.selected = false;
        }
        self.text.push(c);
    }

    /// Delete the last character, or the whole selected text.
    pub fn backspace(&mut self) {
        if self.selected {
            self.text.clear();
            self.selected = false;
        } else {
            self.text.pop();
        }
    }

    /// Clear the text (`Ctrl-u`).
    pub fn clear(&mut self) {
        self.text.clear();
        self.selected = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_text_is_replaced_not_appended_to() {
        let mut p = Prompt::reopen("alpine");
        p.type_char('f');
        assert_eq!(p.text, "f");
        p.type_char('a');
        p.backspace();
        assert_eq!(p.text, "f");
        let mut p = Prompt::reopen("alpine");
        p.backspace();
        assert_eq!(p.text, "");
        let mut p = Prompt::empty();
        p.type_char('x');
        p.clear();
        assert_eq!(p, Prompt::empty());
        assert!(!Prompt::reopen("").selected);
    }
}
