//! Where a D-Bus connection to logind comes from. The logind backend takes a connection and
//! does not care how it was made: the local system bus here; other transports (another host
//! over ssh, a machine registered with systemd-machined) live in this module too.

use std::time::Duration;

use zbus::Connection;

use crate::error::{Error, Result};

/// How long a method call may take before the bus counts as not answering.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// The local system bus.
pub fn system_bus() -> Result<Connection> {
    zbus::block_on(async {
        zbus::connection::Builder::system()
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(|e| Error::system(format!("cannot connect to the system bus: {e}")))
    })
}
