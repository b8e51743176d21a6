//! Warnings on another host's (or a machine's) terminals. logind's bus offers no way to
//! write to a terminal: a transient service there runs `cat` with the text as its standard
//! input and the terminal as its standard output. The text is data, never a command line,
//! and the terminal's name — that host's text — must be a terminal's name.

use std::time::{Duration, Instant};

use zbus::names::InterfaceName;

use super::Logind;
use super::bus::{SystemdProxy, bus_label};
use super::props::{bus_error, error_name};
use crate::backend::Warned;
use crate::error::{Error, Kind, Result};
use crate::model::Session;
use crate::system::tty;

/// How long a warning to another host's terminal may take to be written.
const WARNING_WAIT: Duration = Duration::from_secs(5);

/// How often the job of the warning is asked whether it is done.
const JOB_POLL: Duration = Duration::from_millis(10);

impl Logind {
    /// The warning on the session's TTY, written by a transient unit on its host.
    pub(super) fn warn_remote(&self, session: &Session, text: &str) -> Warned {
        let mut warned = Warned::default();
        if let Some(tty) = session.tty.clone() {
            if !tty::is_terminal_name(&tty) {
                warned.missed.push(format!("{tty} (not a terminal name)"));
                return warned;
            }
            match zbus::block_on(self.write_remote(session, &tty, text)) {
                Ok(()) => warned.reached.push(tty),
                Err(e) => warned.missed.push(format!("{tty} ({e})")),
            }
        }
        warned
    }

    /// Writes `text` to a terminal of another host: a transient service there runs `cat` with
    /// the text as its standard input and the terminal as its standard output. The text is
    /// data, never a command line.
    pub(super) async fn write_remote(
        &self,
        session: &Session,
        tty: &str,
        text: &str,
    ) -> Result<()> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let systemd = SystemdProxy::new(&self.conn)
            .await
            .map_err(|e| bus_error(self.locality, &e, "cannot reach systemd"))?;
        let unit = format!(
            "logoff-warning-{}-{}-{}.service",
            bus_label(session.id.as_str()),
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        );
        let exec: Vec<(String, Vec<String>, bool)> =
            vec![("/bin/cat".into(), vec!["cat".into()], false)];
        let properties: Vec<(&str, zbus::Variant<'_>)> = vec![
            (
                "Description",
                zbus::Variant::from(format!("logoff: warning to {tty}")),
            ),
            ("ExecStart", zbus::Variant::from(exec)),
            ("StandardInput", zbus::Variant::from("data")),
            (
                "StandardInputData",
                zbus::Variant::from(text.as_bytes().to_vec()),
            ),
            ("StandardOutput", zbus::Variant::from("tty")),
            ("StandardError", zbus::Variant::from("null")),
            ("TTYPath", zbus::Variant::from(format!("/dev/{tty}"))),
            // The start job ends when cat has: the text is out before anything is signalled.
            ("Type", zbus::Variant::from("oneshot")),
            ("CollectMode", zbus::Variant::from("inactive-or-failed")),
        ];
        let job = systemd
            .start_transient_unit(&unit, "fail", &properties, &[])
            .await
            .map_err(|e| match error_name(&e).as_deref() {
                Some(
                    "org.freedesktop.DBus.Error.AccessDenied"
                    | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                ) => Error::new(Kind::AccessDenied, "not allowed to start a unit there"),
                _ => bus_error(self.locality, &e, "cannot start a unit there"),
            })?;
        // A job object exists until the job is done.
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination("org.freedesktop.systemd1")
            .path(job)
            .build()
            .await
            .map_err(|e| bus_error(self.locality, &e, "cannot follow the job"))?;
        let end = Instant::now() + WARNING_WAIT;
        while Instant::now() < end {
            let state = props
                .get(
                    InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Job"),
                    "State",
                )
                .await;
            if state.is_err() {
                return Ok(());
            }
            std::thread::sleep(JOB_POLL);
        }
        Err(Error::system("the warning was not written in time"))
    }
}
