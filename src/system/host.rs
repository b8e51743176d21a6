//! This host's name, and whether a `/SERVER` name means this host.

/// The host name (`uname -n`).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Whether `server` names the local host: `.`, `localhost`, the host name (or its short
/// form), or a loopback address.
pub fn is_local(server: &str) -> bool {
    let server = server.trim_end_matches('.');
    if server.is_empty() {
        // "." (the current server, as the original spells it)
        return true;
    }
    let lower = server.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "localhost" | "localhost.localdomain" | "127.0.0.1" | "::1" | "[::1]"
    ) {
        return true;
    }
    let host = hostname().to_ascii_lowercase();
    let short = host.split('.').next().unwrap_or(&host);
    lower == host || lower == short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names() {
        assert!(is_local("."));
        assert!(is_local("localhost"));
        assert!(is_local("LOCALHOST"));
        assert!(is_local("127.0.0.1"));
        assert!(is_local(&hostname()));
        assert!(!is_local("some-other-host.example"));
    }
}
