//! Text other people control — a process's name or environment, utmp, a policy's message,
//! another host's answers — made fit for a terminal: the one cleaner every message, table
//! cell and warning goes through.
//!
//! A C0 control shows as `^X` (`^[` for ESC), DEL as `^?`, a C1 control or a bidi control
//! (which reorders what the rest of a line shows) as `\u{XXXX}`. Where the text goes to a
//! user's terminal as a warning, line feeds become CR LF (the terminal may be in raw mode)
//! and tabs stay; on the admin's terminal a line feed is `^J`, so it cannot start a line of
//! its own.

use std::borrow::Cow;

/// Whether a character must not reach a terminal as it is: C0 and C1 controls, DEL, and the
/// bidi controls (embeddings, overrides, isolates, marks) that change the order in which the
/// rest of a line is shown.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// What line breaks become.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Breaks {
    /// `^J`: one line of the admin's output.
    Escape,
    /// CR LF, tabs kept: a message of several lines on a user's terminal.
    CrLf,
}

fn cleaned(text: &str, breaks: Breaks) -> Cow<'_, str> {
    let safe = !text.chars().any(is_unsafe_char);
    if safe {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if breaks == Breaks::CrLf => out.push_str("\r\n"),
            '\t' if breaks == Breaks::CrLf => out.push('\t'),
            c if u32::from(c) < 0x20 => {
                out.push('^');
                out.push(char::from(
                    b'@' + u8::try_from(u32::from(c)).unwrap_or(b'?'),
                ));
            }
            '\u{7f}' => out.push_str("^?"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text made fit for the admin's terminal, on one line. Borrowed when clean.
pub fn clean(text: &str) -> Cow<'_, str> {
    cleaned(text, Breaks::Escape)
}

/// Text made fit for someone else's terminal, as wall(1) does: its lines kept, as CR LF.
pub fn sanitize(text: &str) -> String {
    cleaned(text, Breaks::CrLf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_makes_control_and_bidi_characters_visible() {
        assert_eq!(clean("plain"), "plain");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        assert_eq!(clean("\u{1b}]0;pwned\u{7}"), "^[]0;pwned^G");
        assert_eq!(clean("a\nb\rc\td"), "a^Jb^Mc^Id");
        assert_eq!(clean("del\u{7f}"), "del^?");
        assert_eq!(clean("csi\u{9b}31m"), "csi\\u{009b}31m");
        assert_eq!(clean("abc\u{202e}fed\u{2066}"), "abc\\u{202e}fed\\u{2066}");
        assert_eq!(clean("é ü 日本"), "é ü 日本");
    }

    /// One cleaner: a C1 control comes out the same way for the admin and for users.
    #[test]
    fn sanitize_keeps_lines_and_escapes_as_clean_does() {
        assert_eq!(sanitize("save\nnow"), "save\r\nnow");
        assert_eq!(sanitize("save\r\nnow"), "save^M\r\nnow");
        assert_eq!(sanitize("\u{1b}[2Jgone"), "^[[2Jgone");
        assert_eq!(sanitize("bell\u{7}"), "bell^G");
        assert_eq!(sanitize("tab\tok"), "tab\tok");
        assert_eq!(sanitize("\u{9b}31m"), clean("\u{9b}31m"));
        assert_eq!(sanitize("abc\u{202e}fed"), "abc\\u{202e}fed");
    }
}
