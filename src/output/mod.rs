//! What logoff prints: the session list (a table in the spirit of `quser`, or JSON with the
//! same data under stable keys), `/V` lines, and errors.
//!
//! Output to a closed pipe or a hung-up terminal never fails the command: a logoff run inside
//! the session it ends loses its terminal on the way, and must still finish its work.
//!
//! Much of what is printed is text other users control (a process's environment and command
//! line, utmp, another host's answers). On its way to a terminal, every table cell, message
//! and `/V` line goes through [`clean`]: control characters (C0, DEL, C1) and the bidi
//! controls that reorder what is shown become visible escapes. JSON keeps the exact values,
//! with those characters escaped as `\uXXXX` ([`json`]).

use std::io::{self, Write};

use serde::Serialize;

pub mod report;
pub mod table;

pub use crate::text::clean;
use crate::text::is_unsafe_char;

/// JSON (pretty), with the characters [`clean`] escapes written as `\uXXXX`: the values stay
/// exact for a program, and nothing in them acts on a terminal the JSON is shown on.
/// (serde_json escapes the C0 controls itself; the rest can only be inside strings, where an
/// escape means the same character.)
pub fn json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(is_unsafe_char) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_char(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Writes to standard output, remembering rather than failing on a closed pipe or terminal.
#[derive(Default)]
pub struct Out {
    lost: bool,
}

impl Out {
    pub fn print(&mut self, text: &str) {
        if self.lost {
            return;
        }
        let mut stdout = anstream::stdout().lock();
        if stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            self.lost = true;
        }
    }

    /// One line of text, [`clean`]ed: a line feed in it cannot start a line of its own.
    pub fn line(&mut self, text: &str) {
        self.print(&format!("{}\n", clean(text)));
    }
}

/// Prints an error line on standard error (`logoff: ...`), [`clean`]ed, ignoring a closed
/// stream. The line goes out in one write: standard error is unbuffered, and a line written
/// in pieces could be cut short by the process exiting on another thread meanwhile.
pub fn error_line(message: &str) {
    let line = format!("logoff: {}\n", clean(message));
    let _ = anstream::stderr().lock().write_all(line.as_bytes());
}

/// Prints raw text on standard error, ignoring a closed stream.
pub fn stderr_text(text: &str) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_exact_values_and_escapes_what_a_terminal_acts_on() {
        let value = serde_json::json!({"remote_host": "\u{1b}[31mx\u{9b}\u{202e}\u{7f}"});
        let text = json(&value).expect("json");
        assert!(
            !text.chars().any(|c| is_unsafe_char(c) && c != '\n'),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, value);
    }
}
