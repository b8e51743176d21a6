//! Machines (containers, VMs) registered with this host's systemd-machined, reached as
//! `loginctl -M` does.

use std::process::Command;
use std::time::Duration;

use zbus::Connection;

use super::BRIDGE;
use super::child::{Tunnel, through_child};
use crate::backend::logind::system_bus;
use crate::error::{Error, Kind, Result};

#[zbus::proxy(
    interface = "org.freedesktop.machine1.Manager",
    default_service = "org.freedesktop.machine1",
    default_path = "/org/freedesktop/machine1"
)]
trait Machined {
    fn get_machine(&self, name: &str) -> zbus::Result<zbus::OwnedObjectPath>;
}

/// The system bus of a machine (container or VM) registered with this host's
/// systemd-machined, reached as `loginctl -M` does: `systemd-stdio-bridge --machine=NAME`, run
/// here, enters the machine's namespaces and root before it connects to the bus socket, so
/// the socket's path is resolved inside the machine and no link planted there can lead back
/// to this host's bus. The bus that answers is then refused if it is this host's own system
/// bus (a machine whose leader runs in this host's namespaces, or that has this host's bus
/// socket mounted in): the bus daemon's ID (`org.freedesktop.DBus.GetId`) tells.
///
/// (Not the peer's machine ID: the bridge answers `org.freedesktop.DBus.Peer` calls itself,
/// with the ID of the namespace it was started in.)
pub fn bus(name: &str, connect_timeout: Duration) -> Result<(Connection, Tunnel)> {
    let unreachable =
        |why: String| Error::new(Kind::Remote, format!("cannot reach machine {name}: {why}"));
    let system = system_bus().map_err(|e| unreachable(e.message().to_string()))?;
    check_registered(&system, name).map_err(unreachable)?;
    let mut bridge = Command::new(BRIDGE);
    bridge.arg(format!("--machine={name}"));
    let (conn, tunnel) = through_child(bridge, connect_timeout)
        .map_err(|(e, said)| unreachable(if said.is_empty() { e.to_string() } else { said }))?;
    let ours = bus_id(&system)
        .map_err(|e| unreachable(format!("cannot ask this host's bus its ID: {e}")))?;
    let theirs =
        bus_id(&conn).map_err(|e| unreachable(format!("cannot ask its bus its ID: {e}")))?;
    if ours == theirs {
        return Err(unreachable(format!(
            "the bus it leads to is this host's own system bus (bus ID {theirs}): refusing \
             to act on this host's sessions as if they were the machine's"
        )));
    }
    Ok((conn, tunnel))
}

/// The ID of the bus daemon behind `conn` (`org.freedesktop.DBus.GetId`).
fn bus_id(conn: &Connection) -> zbus::Result<String> {
    zbus::block_on(async {
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        Ok(dbus.get_id().await?.to_string())
    })
}

/// Asks this host's machined whether `name` is a registered machine, for a clear error
/// before the bridge is run.
fn check_registered(system: &Connection, name: &str) -> std::result::Result<(), String> {
    zbus::block_on(async {
        let machined = MachinedProxy::new(system)
            .await
            .map_err(|e| e.to_string())?;
        machined.get_machine(name).await.map_err(|e| {
            let text = e.to_string();
            if text.contains("NoSuchMachine") {
                "no machine of that name is registered with systemd-machined \
                 (`machinectl list` shows them)"
                    .to_string()
            } else if text.contains("ServiceUnknown") || text.contains("NameHasNoOwner") {
                "systemd-machined does not answer on the system bus".to_string()
            } else {
                text
            }
        })?;
        Ok(())
    })
}
