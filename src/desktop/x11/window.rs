//! A warning on a session's display, as Windows' `msg` shows one in an RDP session: a
//! window logoff draws itself, over the X server's own socket, with the session's cookie.
//! No program is started for it — nothing runs as the user with the caller's identity
//! (audit session, login uid, cgroup), so there is nothing to take over.
//!
//! A thread of logoff's keeps the window: it draws the text when the server asks
//! (Expose), and closes it on a click or a key, when [`Window`] is dropped (the warning is
//! replaced, the run ends), or when its lifetime is over. Every wait on the server ends at a
//! deadline; a server that stops answering only ends its own window early.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, Char2b, ConnectionExt, CreateGCAux, CreateWindowAux, EventMask, Font, PropMode,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::{TimedStream, X_WAIT, XServer};
use crate::deadline::Deadline;

/// The window's name (WM_NAME): what a window list shows.
pub const TITLE: &str = "logoff";

/// Lines longer than this are wrapped; more lines than [`MAX_LINES`] are cut.
const LINE_WIDTH: usize = 100;
const MAX_LINES: usize = 40;
const MARGIN: u16 = 16;

/// A window on a session's display; closed when dropped.
pub struct Window {
    closer: UnixStream,
}

impl Window {
    /// Shows `text` on `server`'s display for at most `lifetime`. Returns once the window
    /// is mapped, or why it could not be, within [`X_WAIT`].
    pub fn show(server: XServer, text: &str, lifetime: Duration) -> io::Result<Window> {
        let closer = server.socket.try_clone()?;
        let lines = layout(text);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("x11-window".into())
            .stack_size(256 * 1024)
            .spawn(move || keep(server, &lines, lifetime, &tx))?;
        match rx.recv_timeout(X_WAIT + Duration::from_millis(100)) {
            Ok(Ok(())) => Ok(Window { closer }),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                let _ = closer.shutdown(std::net::Shutdown::Both);
                Err(io::ErrorKind::TimedOut.into())
            }
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // The window's thread sees its connection end; the server then destroys the window.
        let _ = self.closer.shutdown(std::net::Shutdown::Both);
    }
}

/// The window's thread: makes it, says how that went, then draws it until it is closed.
fn keep(
    server: XServer,
    lines: &[Vec<Char2b>],
    lifetime: Duration,
    ready: &mpsc::Sender<io::Result<()>>,
) {
    let Some(conn) = server.connect(Deadline::after(X_WAIT)) else {
        let _ = ready.send(Err(io::Error::other("the X server refused the connection")));
        return;
    };
    let made = make(&conn, lines);
    let _ = ready.send(
        made.as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::other(e.to_string())),
    );
    let Ok(drawing) = made else {
        return;
    };
    conn.stream().deadline.set(Deadline::after(lifetime));
    loop {
        match conn.wait_for_event() {
            Ok(Event::Expose(e)) if e.count == 0 => {
                if drawing.draw(&conn, lines).is_err() {
                    return;
                }
            }
            Ok(Event::ButtonPress(_) | Event::KeyPress(_) | Event::DestroyNotify(_)) | Err(_) => {
                return;
            }
            Ok(_) => {}
        }
    }
}

/// What drawing the window needs.
struct Drawing {
    window: u32,
    gc: u32,
    line_height: i16,
    ascent: i16,
}

type Failed = Box<dyn std::error::Error>;

/// Creates, names and maps the window, sized to the text and centred on the screen.
fn make(conn: &RustConnection<TimedStream>, lines: &[Vec<Char2b>]) -> Result<Drawing, Failed> {
    let screen = conn
        .setup()
        .roots
        .first()
        .ok_or("the X server has no screen")?;
    let font = open_font(conn)?;
    let mut width = 0i32;
    let (mut ascent, mut descent) = (0i16, 0i16);
    for line in lines {
        let extents = conn.query_text_extents(font, line)?.reply()?;
        width = width.max(extents.overall_width);
        ascent = ascent.max(extents.font_ascent);
        descent = descent.max(extents.font_descent);
    }
    let line_height = ascent + descent + 2;
    let margin = i32::from(MARGIN);
    let rows = i32::try_from(lines.len()).unwrap_or(i32::MAX);
    let w = clamp(width + 2 * margin, screen.width_in_pixels);
    let h = clamp(
        rows * i32::from(line_height) + 2 * margin,
        screen.height_in_pixels,
    );
    let x = i16::try_from((screen.width_in_pixels.saturating_sub(w)) / 2).unwrap_or(0);
    let y = i16::try_from((screen.height_in_pixels.saturating_sub(h)) / 3).unwrap_or(0);
    let window = conn.generate_id()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        window,
        screen.root,
        x,
        y,
        w,
        h,
        2,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(screen.white_pixel)
            .border_pixel(screen.black_pixel)
            .event_mask(
                EventMask::EXPOSURE
                    | EventMask::BUTTON_PRESS
                    | EventMask::KEY_PRESS
                    | EventMask::STRUCTURE_NOTIFY,
            ),
    )?;
    conn.change_property8(
        PropMode::REPLACE,
        window,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        TITLE.as_bytes(),
    )?;
    conn.change_property8(
        PropMode::REPLACE,
        window,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        b"logoff\0Logoff\0",
    )?;
    let gc = conn.generate_id()?;
    conn.create_gc(
        gc,
        window,
        &CreateGCAux::new()
            .foreground(screen.black_pixel)
            .background(screen.white_pixel)
            .font(font),
    )?;
    conn.map_window(window)?;
    conn.flush()?;
    Ok(Drawing {
        window,
        gc,
        line_height,
        ascent,
    })
}

fn clamp(size: i32, screen: u16) -> u16 {
    u16::try_from(size.max(1))
        .unwrap_or(u16::MAX)
        .min(screen.max(1))
}

/// A font for the text: a Unicode one where the server has it, else `fixed` (which every X
/// server has built in, Latin-1 only).
fn open_font(conn: &RustConnection<TimedStream>) -> Result<Font, Failed> {
    let font = conn.generate_id()?;
    let unicode = b"-misc-fixed-medium-r-normal--13-*-*-*-*-*-iso10646-1";
    if conn.open_font(font, unicode)?.check().is_ok() {
        return Ok(font);
    }
    conn.open_font(font, b"fixed")?.check()?;
    Ok(font)
}

impl Drawing {
    fn draw(
        &self,
        conn: &RustConnection<TimedStream>,
        lines: &[Vec<Char2b>],
    ) -> Result<(), Failed> {
        let margin = i16::try_from(MARGIN).unwrap_or(0);
        let mut y = margin + self.ascent;
        // Lines are at most LINE_WIDTH characters: one request each (ImageText16 takes 255).
        for line in lines {
            conn.image_text16(self.window, self.gc, margin, y, line)?;
            y = y.saturating_add(self.line_height);
        }
        conn.flush()?;
        Ok(())
    }
}

/// The warning's text as the window shows it: a terminal's warning without carriage
/// returns, bells or blank lines around it, wrapped, and a last line saying how to close
/// it; every character as a 16-bit one (beyond that, `?`).
fn layout(text: &str) -> Vec<Vec<Char2b>> {
    let clean: String = text.chars().filter(|&c| c != '\r' && c != '\x07').collect();
    let mut lines: Vec<Vec<Char2b>> = Vec::new();
    for line in clean.trim().lines() {
        let chars: Vec<Char2b> = line.chars().map(char2b).collect();
        if chars.is_empty() {
            lines.push(Vec::new());
        }
        for piece in chars.chunks(LINE_WIDTH) {
            lines.push(piece.to_vec());
        }
    }
    lines.truncate(MAX_LINES);
    lines.push(Vec::new());
    lines.push(
        "(Click or press a key to close this window.)"
            .chars()
            .map(char2b)
            .collect(),
    );
    lines
}

fn char2b(c: char) -> Char2b {
    let [byte1, byte2] = u16::try_from(u32::from(c))
        .unwrap_or(u16::from(b'?'))
        .to_be_bytes();
    Char2b { byte1, byte2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(line: &[Char2b]) -> String {
        line.iter()
            .map(|c| {
                char::from_u32(u32::from(u16::from_be_bytes([c.byte1, c.byte2]))).unwrap_or('?')
            })
            .collect()
    }

    #[test]
    fn a_terminal_warning_becomes_the_window_text() {
        let lines = layout("\r\n\x07*** logoff: root is logging off ***\r\nbyé 😀\r\n");
        let shown: Vec<String> = lines.iter().map(|l| text_of(l)).collect();
        assert_eq!(shown[0], "*** logoff: root is logging off ***");
        assert_eq!(shown[1], "byé ?");
        assert!(shown.last().is_some_and(|l| l.contains("Click")));
        let long = layout(&"x".repeat(250));
        assert_eq!(long[0].len(), LINE_WIDTH);
        assert_eq!(long.len(), 3 + 2);
        assert_eq!(layout(&"line\n".repeat(100)).len(), MAX_LINES + 2);
    }
}
