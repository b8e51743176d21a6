//! logind's session properties turned into [`Session`]s, and D-Bus errors into ours.

use std::collections::HashMap;

use zbus::OwnedVariant;

use crate::error::{Error, Kind};
use crate::model::{Activity, IdleSource, Pid, Seen, Session, SessionId, SessionState, Uid};
use crate::transport::Reach;

pub(super) fn get_str(props: &HashMap<String, OwnedVariant>, key: &str) -> String {
    props
        .get(key)
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or_default()
        .to_string()
}

fn get_u32(props: &HashMap<String, OwnedVariant>, key: &str) -> Option<u32> {
    props.get(key).and_then(|v| u32::try_from(v).ok())
}

fn get_u64(props: &HashMap<String, OwnedVariant>, key: &str) -> Option<u64> {
    props.get(key).and_then(|v| u64::try_from(v).ok())
}

fn get_bool(props: &HashMap<String, OwnedVariant>, key: &str) -> bool {
    props
        .get(key)
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false)
}

/// The first field of a struct property (`User` is `(uo)`, `Seat` is `(so)`).
fn first_field<'a>(
    props: &'a HashMap<String, OwnedVariant>,
    key: &str,
) -> Option<&'a zbus::Variant<'a>> {
    let structure = <&zbus::Structure>::try_from(props.get(key)?).ok()?;
    structure.fields().first()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn timestamp_us(us: Option<u64>) -> Option<jiff::Timestamp> {
    us.filter(|&t| t > 0)
        .and_then(|t| jiff::Timestamp::from_microsecond(i64::try_from(t).ok()?).ok())
}

/// A session from its `GetAll` properties. Strings stay strings: logind adds new classes,
/// types and states.
pub(super) fn session_from(props: &HashMap<String, OwnedVariant>) -> Session {
    let uid = first_field(props, "User")
        .and_then(|v| u32::try_from(v).ok())
        .map(Uid::from_raw);
    let seat = first_field(props, "Seat")
        .and_then(|v| <&str>::try_from(v).ok())
        .map(String::from)
        .and_then(non_empty);
    let remote_host = non_empty(get_str(props, "RemoteHost"));
    let kind = non_empty(get_str(props, "Type"));
    let idle_hint = props.get("IdleHint").and_then(|v| bool::try_from(v).ok());
    let idle_since = idle_since(kind.as_deref(), idle_hint, get_u64(props, "IdleSinceHint"));
    Session {
        id: SessionId::new(get_str(props, "Id")),
        uid,
        user: get_str(props, "Name"),
        tty: non_empty(get_str(props, "TTY")),
        display: non_empty(get_str(props, "Display")),
        seat,
        vtnr: get_u32(props, "VTNr").filter(|&v| v > 0),
        state: SessionState::parse(&get_str(props, "State")),
        class: non_empty(get_str(props, "Class")),
        idle_since,
        activity: Activity {
            input: idle_since.map(|at| Seen {
                at,
                source: IdleSource::Logind,
            }),
            ..Activity::default()
        },
        kind,
        service: non_empty(get_str(props, "Service")),
        remote: get_bool(props, "Remote") || remote_host.is_some(),
        remote_host,
        idle_hint,
        logon_time: timestamp_us(get_u64(props, "Timestamp")),
        leader: get_u32(props, "Leader")
            .filter(|&p| p > 0)
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
        processes: None,
        // LOGOFF_LOGIND_NO_SCOPES=1: as on elogind, which has no scopes (for testing).
        scope: non_empty(get_str(props, "Scope")).filter(|_| !ignore_scopes()),
        audit: get_u32(props, "Audit").filter(|&a| a > 0 && a != u32::MAX),
        ..Session::default()
    }
}

/// Since when a session is idle, from logind's hints. A graphical session's desktop sets
/// `IdleHint` itself, and `IdleSinceHint` is when the hint last changed: while the hint is
/// false the session is in use — since that moment it has been *active*, not idle (logind's
/// own IdleAction reads it so), and it is idle since now. A terminal session's
/// `IdleSinceHint` is its terminal's last input whatever `IdleHint` says (logind sets the
/// hint only against its IdleAction delay).
fn idle_since(
    kind: Option<&str>,
    hint: Option<bool>,
    since_us: Option<u64>,
) -> Option<jiff::Timestamp> {
    let graphical = matches!(kind, Some("x11" | "wayland" | "mir"));
    if graphical && hint == Some(false) {
        return Some(jiff::Timestamp::now());
    }
    timestamp_us(since_us)
}

/// Set to `1` to treat logind's sessions as scope-less, as elogind's are (for testing the
/// tracking of such sessions on a systemd host).
pub const NO_SCOPES_ENV: &str = "LOGOFF_LOGIND_NO_SCOPES";

fn ignore_scopes() -> bool {
    std::env::var(NO_SCOPES_ENV).is_ok_and(|v| v == "1")
}

/// The D-Bus error name of a method error reply.
pub(super) fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(fdo) => Some(zbus::DBusError::name(fdo.as_ref()).to_string()),
        _ => None,
    }
}

pub(super) fn unknown_method(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some("org.freedesktop.DBus.Error.UnknownMethod")
    )
}

pub(super) fn denied(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some("org.freedesktop.DBus.Error.AccessDenied")
    )
}

/// The session went away between listing and asking.
pub(super) fn vanished(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.UnknownObject"
                | "org.freedesktop.DBus.Error.UnknownMethod"
                | "org.freedesktop.DBus.Error.UnknownInterface"
                | "org.freedesktop.login1.NoSuchSession"
        )
    )
}

/// A failure of the bus or of a service on it. On another host (or a machine) that is the
/// remote host failing (exit status 6); here, the system (5).
pub(super) fn bus_error(reach: Reach, e: &zbus::Error, what: &str) -> Error {
    Error::new(failure_kind(reach), format!("{what}: {e}"))
}

/// The kind of a failure of the bus, or of what answers on it, reached as `reach` says.
pub(super) fn failure_kind(reach: Reach) -> Kind {
    match reach {
        Reach::ThisHost => Kind::System,
        Reach::Elsewhere => Kind::Remote,
    }
}

/// systemd does not know the unit (any more).
pub(super) fn no_such_unit(e: &zbus::Error) -> bool {
    error_name(e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit")
}

/// An error from TerminateSession, KillSession or KillUnit: what went wrong, for the flow
/// to name the session it was ending (`cannot log off session 7 (bob): access denied`).
pub(super) fn action_error(reach: Reach, e: &zbus::Error) -> Error {
    match error_name(e).as_deref() {
        Some(
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ) => Error::new(Kind::AccessDenied, "access denied"),
        Some("org.freedesktop.login1.NoSuchSession") => {
            Error::new(Kind::NoSuchSession, "no such session")
        }
        _ => Error::new(failure_kind(reach), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 17, item 6): a graphical session that went idle and came back has
    /// IdleHint false and IdleSinceHint the moment it came back; it was taken as idle since
    /// then, and logoffd logged off a user who was working.
    #[test]
    fn a_graphical_session_whose_hint_is_false_is_not_idle() {
        let came_back = 1_800_000_000_000_000;
        let now = jiff::Timestamp::now();
        let active = idle_since(Some("x11"), Some(false), Some(came_back)).expect("known");
        assert!(active >= now, "{active}");
        let idle = idle_since(Some("wayland"), Some(true), Some(came_back));
        assert_eq!(
            idle.map(jiff::Timestamp::as_microsecond),
            Some(came_back as i64)
        );
        // A terminal's last input counts whatever the hint says.
        let tty = idle_since(Some("tty"), Some(false), Some(came_back));
        assert_eq!(
            tty.map(jiff::Timestamp::as_microsecond),
            Some(came_back as i64)
        );
        assert_eq!(idle_since(Some("x11"), Some(true), Some(0)), None);
    }
}
