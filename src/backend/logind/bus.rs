//! The D-Bus interfaces logind's backend speaks — logind's manager, systemd's manager,
//! polkit's authority — as small proxy traits, and the object paths they use.

use std::collections::HashMap;

use zbus::names::InterfaceName;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

use crate::model::SessionId;

pub(super) const SESSION_INTERFACE: &str = "org.freedesktop.login1.Session";
pub(super) const MANAGE_ACTION: &str = "org.freedesktop.login1.manage";

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
pub(super) trait Manager {
    fn list_sessions(&self) -> zbus::Result<Vec<(String, u32, String, String, OwnedObjectPath)>>;

    #[allow(clippy::type_complexity)]
    #[zbus(name = "ListSessionsEx")]
    fn list_sessions_ex(
        &self,
    ) -> zbus::Result<
        Vec<(
            String,
            u32,
            String,
            String,
            u32,
            String,
            String,
            bool,
            u64,
            OwnedObjectPath,
        )>,
    >;

    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;

    fn terminate_session(&self, session_id: &str) -> zbus::Result<()>;

    /// What, who, why, mode, uid, pid of every inhibitor lock.
    #[allow(clippy::type_complexity)]
    fn list_inhibitors(&self) -> zbus::Result<Vec<(String, String, String, String, u32, u32)>>;

    fn kill_session(&self, session_id: &str, who: &str, signal: i32) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub(super) trait Systemd {
    fn get_unit_processes(&self, unit: &str) -> zbus::Result<Vec<(String, u32, String)>>;

    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;

    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, zbus::Variant<'_>)],
        aux: &[(&str, &[(&str, zbus::Variant<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
pub(super) trait Polkit {
    #[allow(clippy::type_complexity)]
    fn check_authorization(
        &self,
        subject: &(&str, HashMap<&str, zbus::Variant<'_>>),
        action_id: &str,
        details: HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

/// An object path label escaped as sd-bus does (`bus_label_escape`): letters, and digits
/// after the first character, stay; every other byte becomes `_xx`.
pub(super) fn bus_label(name: &str) -> String {
    let mut label = String::new();
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            label.push(b as char);
        } else {
            label.push_str(&format!("_{b:02x}"));
        }
    }
    label
}

fn object_path(prefix: &str, name: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{prefix}{}", bus_label(name)))
        .unwrap_or_else(|_| OwnedObjectPath::from(zbus::ObjectPath::from_static_str_unchecked("/")))
}

/// logind's object path for a session ID (`3` → `/org/freedesktop/login1/session/_33`).
pub(super) fn session_path(id: &SessionId) -> OwnedObjectPath {
    object_path("/org/freedesktop/login1/session/", id.as_str())
}

/// systemd's object path for a unit (`session-3.scope` →
/// `/org/freedesktop/systemd1/unit/session_2d3_2escope`).
pub(super) fn unit_path(unit: &str) -> OwnedObjectPath {
    object_path("/org/freedesktop/systemd1/unit/", unit)
}

/// Every property of a logind session object (`GetAll`).
pub(super) async fn properties(
    conn: &Connection,
    path: OwnedObjectPath,
) -> zbus::Result<HashMap<String, OwnedVariant>> {
    let proxy = zbus::fdo::PropertiesProxy::builder(conn)
        .destination("org.freedesktop.login1")
        .path(path)
        .build()
        .await?;
    Ok(proxy
        .get_all(InterfaceName::from_static_str_unchecked(SESSION_INTERFACE))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_escape_like_sd_bus() {
        assert_eq!(
            unit_path("session-3.scope").as_str(),
            "/org/freedesktop/systemd1/unit/session_2d3_2escope"
        );
    }

    #[test]
    fn session_paths_escape_like_sd_bus() {
        assert_eq!(
            session_path(&SessionId::new("3")).as_str(),
            "/org/freedesktop/login1/session/_33"
        );
        assert_eq!(
            session_path(&SessionId::new("c1")).as_str(),
            "/org/freedesktop/login1/session/c1"
        );
        assert_eq!(
            session_path(&SessionId::new("12")).as_str(),
            "/org/freedesktop/login1/session/_312"
        );
    }
}
