//! Every key of the dashboard, in one table that also draws the help overlay and the
//! hint bar, in the k9s tradition.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Expand,
    Collapse,
    Toggle,
    Filter,
    CommandLine,
    Yaml,
    Edit,
    Help,
    Back,
    Quit,
}

pub struct Binding {
    /// How the help overlay names the keys.
    pub keys: &'static str,
    codes: &'static [KeyCode],
    pub command: Command,
    pub help: &'static str,
    /// Shown in the hint bar at the bottom: the key, a space, a word or two.
    pub hint: Option<&'static str>,
}

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "↑ k",
        codes: &[KeyCode::Up, KeyCode::Char('k')],
        command: Command::Up,
        help: "move up",
        hint: None,
    },
    Binding {
        keys: "↓ j",
        codes: &[KeyCode::Down, KeyCode::Char('j')],
        command: Command::Down,
        help: "move down",
        hint: Some("j/k move"),
    },
    Binding {
        keys: "PgUp PgDn",
        codes: &[KeyCode::PageUp],
        command: Command::PageUp,
        help: "move a page up / down",
        hint: None,
    },
    Binding {
        keys: "",
        codes: &[KeyCode::PageDown],
        command: Command::PageDown,
        help: "",
        hint: None,
    },
    Binding {
        keys: "g Home",
        codes: &[KeyCode::Char('g'), KeyCode::Home],
        command: Command::Top,
        help: "go to the top",
        hint: None,
    },
    Binding {
        keys: "G End",
        codes: &[KeyCode::Char('G'), KeyCode::End],
        command: Command::Bottom,
        help: "go to the bottom",
        hint: None,
    },
    Binding {
        keys: "enter l →",
        codes: &[KeyCode::Enter, KeyCode::Char('l'), KeyCode::Right],
        command: Command::Expand,
        help: "expand",
        hint: Some("enter expand"),
    },
    Binding {
        keys: "h ←",
        codes: &[KeyCode::Char('h'), KeyCode::Left],
        command: Command::Collapse,
        help: "collapse, or go to the parent",
        hint: Some("h collapse"),
    },
    Binding {
        keys: "space",
        codes: &[KeyCode::Char(' ')],
        command: Command::Toggle,
        help: "expand or collapse",
        hint: None,
    },
    Binding {
        keys: "/",
        codes: &[KeyCode::Char('/')],
        command: Command::Filter,
        help: "filter: words, ns:NAME, key=value, state:non-compliant",
        hint: Some("/ filter"),
    },
    Binding {
        keys: ":",
        codes: &[KeyCode::Char(':')],
        command: Command::CommandLine,
        help: "command: ns NAME, ns all, ctx NAME, q",
        hint: Some(": command"),
    },
    Binding {
        keys: "y",
        codes: &[KeyCode::Char('y')],
        command: Command::Yaml,
        help: "show the selected object's YAML",
        hint: Some("y yaml"),
    },
    Binding {
        keys: "e",
        codes: &[KeyCode::Char('e')],
        command: Command::Edit,
        help: "edit the selected policy, with a live blast-radius preview",
        hint: Some("e edit"),
    },
    Binding {
        keys: "esc",
        codes: &[KeyCode::Esc],
        command: Command::Back,
        help: "close, or clear the filter",
        hint: None,
    },
    Binding {
        keys: "?",
        codes: &[KeyCode::Char('?')],
        command: Command::Help,
        help: "this help",
        hint: Some("? help"),
    },
    Binding {
        keys: "q ctrl-c",
        codes: &[KeyCode::Char('q')],
        command: Command::Quit,
        help: "quit",
        hint: Some("q quit"),
    },
];

/// The command a key stands for in the tree, if any.
pub fn command_for(key: KeyEvent) -> Option<Command> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(Command::Quit);
    }
    BINDINGS
        .iter()
        .find(|binding| binding.codes.contains(&key.code))
        .map(|binding| binding.command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = Vec::new();
        for binding in BINDINGS {
            for code in binding.codes {
                assert!(!seen.contains(code), "{code:?} is bound twice");
                seen.push(*code);
            }
        }
    }

    #[test]
    fn ctrl_c_quits_and_other_control_keys_do_nothing() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(command_for(ctrl('c')), Some(Command::Quit));
        assert_eq!(command_for(ctrl('j')), None);
        let plain = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(command_for(plain), Some(Command::Down));
    }
}
