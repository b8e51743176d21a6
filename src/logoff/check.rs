//! Every target is checked before anything is touched: console protection, then the
//! backend's own privilege check. One refusal refuses the command.

use crate::backend::Backend;
use crate::error::{Error, Kind, Result};
use crate::model::{Session, SessionId};
use crate::system::users::Caller;

/// Whether another user's console session may be logged off (`--console`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsolePolicy {
    /// Refused: the seed's "You can't log off a user from the console session".
    #[default]
    Protect,
    Allow,
}

/// Checks every target before anything is touched. Your own sessions (the current one, or
/// your user's) you may always end, console or not.
pub fn check(
    backend: &mut dyn Backend,
    targets: &[Session],
    caller: &Caller,
    current: Option<&SessionId>,
    console: ConsolePolicy,
) -> Result<()> {
    for s in targets {
        let own = current == Some(&s.id) || s.belongs_to(caller.uid);
        if s.is_console() && !own && console == ConsolePolicy::Protect {
            return Err(Error::new(
                Kind::AccessDenied,
                format!(
                    "cannot log off {}: it is a console session; use --console to log off \
                     another user's console session",
                    s.describe()
                ),
            ));
        }
        backend.check_access(s, caller)?;
    }
    Ok(())
}
