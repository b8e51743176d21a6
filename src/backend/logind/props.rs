//! logind's session properties turned into [`Session`]s, and D-Bus errors into ours.

use std::collections::HashMap;

use zbus::OwnedVariant;

use super::Locality;
use crate::error::{Error, Kind};
use crate::model::{Activity, Hint, Login, Origin, Pid, Session, SessionId, SessionState, Uid};

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
    let hint = Hint {
        idle: props.get("IdleHint").and_then(|v| bool::try_from(v).ok()),
        since: timestamp_us(get_u64(props, "IdleSinceHint")),
    };
    let remote = get_bool(props, "Remote") || remote_host.is_some();
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
        activity: Activity {
            hint: Some(hint),
            ..Activity::default()
        },
        login: Login::Logind(if remote { Origin::Ssh } else { Origin::Local }),
        kind,
        service: non_empty(get_str(props, "Service")),
        remote,
        remote_host,
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
pub(super) fn bus_error(locality: Locality, e: &zbus::Error, what: &str) -> Error {
    Error::new(failure_kind(locality), format!("{what}: {e}"))
}

/// The kind of a failure of the bus, or of what answers on it, reached as `locality` says.
pub(super) fn failure_kind(locality: Locality) -> Kind {
    match locality {
        Locality::ThisHost => Kind::System,
        Locality::Elsewhere => Kind::Remote,
    }
}

/// systemd does not know the unit (any more).
pub(super) fn no_such_unit(e: &zbus::Error) -> bool {
    error_name(e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit")
}

/// An error from TerminateSession, KillSession or KillUnit: what went wrong, for the flow
/// to name the session it was ending (`cannot log off session 7 (bob): access denied`).
pub(super) fn action_error(locality: Locality, e: &zbus::Error) -> Error {
    match error_name(e).as_deref() {
        Some(
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ) => Error::new(Kind::AccessDenied, "access denied"),
        Some("org.freedesktop.login1.NoSuchSession") => {
            Error::new(Kind::NoSuchSession, "no such session")
        }
        _ => Error::new(failure_kind(locality), e.to_string()),
    }
}
