//! What wakes logoffd before its next deadline: a signal (SIGHUP reloads, SIGTERM and
//! SIGINT stop), and where logind runs, its SessionNew and SessionRemoved signals. Each
//! source is a thread that sends to one channel; the main loop waits on it with a timeout
//! (its next deadline), so it never polls.

use std::sync::mpsc::{Receiver, Sender, channel};

use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Something that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGHUP: read the policy again.
    Reload,
    /// SIGTERM, SIGINT: stop.
    Stop,
    /// logind says a session came or went.
    Sessions,
    /// The logind watch ended (logged once; scans go on at the policy's interval).
    WatchLost,
}

/// The channel the sources send to.
pub fn channel_pair() -> (Sender<Event>, Receiver<Event>) {
    channel()
}

/// Starts the signal thread.
pub fn watch_signals(tx: Sender<Event>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let event = if sig == SIGHUP {
                    Event::Reload
                } else {
                    Event::Stop
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Starts the thread that follows logind's SessionNew and SessionRemoved on this host's
/// system bus.
pub fn watch_logind(tx: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("logind".into())
        .spawn(move || {
            let _ = zbus::block_on(follow(&tx));
            let _ = tx.send(Event::WatchLost);
        })?;
    Ok(())
}

async fn follow(tx: &Sender<Event>) -> zbus::Result<()> {
    let conn = zbus::Connection::system().await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.login1")
        .interface("org.freedesktop.login1.Manager")
        .build()?;
    let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        let header = msg.header();
        let member = header.member().map(|m| m.as_str().to_string());
        if matches!(member.as_deref(), Some("SessionNew" | "SessionRemoved"))
            && tx.send(Event::Sessions).is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}
