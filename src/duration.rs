//! Durations on the command line (`--timeout 10s`, `--grace 5m`, `--idle-for 1h`).
//!
//! A bare number means seconds, as for `timeout(1)`; anything else goes to jiff's
//! friendly parser (`1m30s`, `1.5s`, `500ms`, `2h`, and `1d`, `2w` as 24-hour days). Negative durations are refused, and so
//! are durations over [`MAX`] (100 days): nobody means them, and a deadline that far out
//! overflows the clocks it is added to.

use std::time::Duration;

use jiff::SignedDuration;

/// The longest duration accepted anywhere: 100 days.
pub const MAX: Duration = Duration::from_secs(100 * 24 * 3600);

/// Parses a command-line duration. The error text is shown to the user as it is.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = parse_unbounded(text)?;
    if d > MAX {
        return Err(format!(
            "duration '{}' is too long (at most 100 days)",
            text.trim()
        ));
    }
    Ok(d)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let signed: SignedDuration = if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = text
            .parse()
            .map_err(|_| format!("duration '{text}' is too large"))?;
        SignedDuration::from_secs(secs)
    } else {
        match text.parse::<SignedDuration>() {
            Ok(d) => d,
            // Days and weeks (`1d`, `2w`) as 24-hour days: what a time limit means by them.
            Err(e) => text
                .parse::<jiff::Span>()
                .ok()
                .and_then(|span| {
                    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                        .ok()
                })
                .ok_or_else(|| {
                    format!("invalid duration '{text}' (use 30s, 5m, 1h30m, 2d, 500ms): {e}")
                })?,
        }
    };
    Duration::try_from(signed).map_err(|_| format!("duration '{text}' is negative"))
}

/// Formats a duration for messages: `10s`, `1m 30s`, `250ms`, `1d 2h`.
pub fn display(d: Duration) -> String {
    const DAY: u64 = 86400;
    if d.as_secs() >= DAY {
        let days = d.as_secs() / DAY;
        let rest = d - Duration::from_secs(days * DAY);
        return if rest.is_zero() {
            format!("{days}d")
        } else {
            format!("{days}d {}", display(rest))
        };
    }
    match SignedDuration::try_from(d) {
        Ok(sd) if d.is_zero() => format!("{sd:#}"),
        Ok(sd) => {
            // Round to milliseconds: nobody needs nanoseconds in a message.
            let ms = SignedDuration::from_millis(i64::try_from(sd.as_millis()).unwrap_or(i64::MAX));
            format!("{ms:#}")
        }
        Err(_) => format!("{}s", d.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        assert_eq!(parse("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("1d 12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert!(parse("1 month").is_err(), "a month has no fixed length");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "-5s",
            "abc",
            "5 parsecs",
            "99999999999999999999999",
            "300000000000",
            "9223372036854775807",
            "101d",
            "2401h",
            "8640001",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse("2400h"), Ok(MAX));
        assert_eq!(parse("8640000"), Ok(MAX));
        assert!(parse("300000000000").is_err_and(|e| e.contains("at most 100 days")));
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(display(Duration::from_secs(10)), "10s");
        assert_eq!(display(Duration::from_millis(250)), "250ms");
        assert_eq!(display(Duration::from_secs(90)), "1m 30s");
    }
}
