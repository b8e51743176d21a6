//! Logon hours (`hours = ["Mon-Fri 08:00-18:00"]`) and the local clock they, and the
//! allowances' resets, are read on: windows by weekday and time of day in a time zone (the
//! host's, or one named), as Active Directory's logon hours and timekpr's allowed hours
//! are. A window may cross midnight (`Fri 22:00-02:00` ends on Saturday); windows that touch
//! or overlap make one span, so `Mon-Sun 00:00-24:00` never ends. Local times that a DST
//! change skips or repeats are read as jiff's "compatible" rule does (RFC 5545's): a
//! skipped time is as much later as the gap is long (02:30 on a spring-forward day is
//! 03:30), a repeated one is its first occurrence.
//!
//! Pure: [`Hours::standing`] answers for a given moment.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

/// The time zone a rule's local times are in.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// `None`: the host's.
    pub name: Option<String>,
    pub tz: TimeZone,
}

impl Zone {
    /// The host's time zone (`/etc/localtime`, `TZ`).
    pub fn host() -> Zone {
        Zone {
            name: None,
            tz: TimeZone::system(),
        }
    }

    /// A zone of the time zone database (`Europe/Berlin`).
    pub fn named(name: &str) -> Result<Zone, String> {
        TimeZone::get(name)
            .map(|tz| Zone {
                name: Some(name.to_string()),
                tz,
            })
            .map_err(|_| format!("'{name}' is not a time zone of the time zone database"))
    }

    /// Where `date` at `minute` of the day (0..=1440) is, as a moment.
    pub fn moment(&self, date: Date, minute: u16) -> Option<Timestamp> {
        let (date, minute) = if minute >= 1440 {
            (date.tomorrow().ok()?, minute - 1440)
        } else {
            (date, minute)
        };
        let hour = i8::try_from(minute / 60).ok()?;
        let min = i8::try_from(minute % 60).ok()?;
        self.tz
            .to_ambiguous_timestamp(date.at(hour, min, 0, 0))
            .compatible()
            .ok()
    }

    /// The local date of `at`.
    pub fn date(&self, at: Timestamp) -> Date {
        at.to_zoned_datetime(self.tz.clone()).date()
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => f.write_str(n),
            None => f.write_str("the host's time zone"),
        }
    }
}

/// One window: on these weekdays, from `start` for `length` minutes (minutes of the day).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    /// Monday first.
    days: [bool; 7],
    start: u16,
    end: u16,
}

/// A rule's logon hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    windows: Vec<Window>,
    /// As the policy wrote them, for messages.
    pub text: Vec<String>,
    pub zone: Zone,
}

/// Where a moment is with respect to a rule's hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Inside a span of windows that began at `since` (or before `since`: the earliest
    /// looked at) and ends at `until`.
    Inside { since: Timestamp, until: Timestamp },
    /// Outside every window since `since` (the end of the last one, within two days), and
    /// the next begins at `next` (within two weeks), if any.
    Outside {
        since: Option<Timestamp>,
        next: Option<Timestamp>,
    },
    /// The windows cover every moment (no end within two weeks).
    Always,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// How far around a moment windows are looked for: the longest span that can be told apart
/// from "always".
const LOOK_DAYS: i64 = 15;

impl Hours {
    /// `["Mon-Fri 08:00-18:00", "Sat 09:00-12:30", "22:00-06:00"]` (days: `Mon`..`Sun`,
    /// ranges that may wrap, `Sat-Sun`, lists `Mon,Wed`, or none: every day; times `HH:MM`,
    /// `24:00` for the end of the day; an end before the start is on the next day).
    pub fn parse(texts: &[String], zone: Zone) -> Result<Hours, String> {
        if texts.is_empty() {
            return Err("hours needs at least one window, such as \"Mon-Fri 08:00-18:00\"".into());
        }
        let windows = texts
            .iter()
            .map(|t| window(t).map_err(|e| format!("hours \"{t}\": {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Hours {
            windows,
            text: texts.to_vec(),
            zone,
        })
    }

    /// `Mon-Fri 08:00-18:00, Sat 09:00-12:00 (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        match &self.zone.name {
            Some(z) => format!("{} ({z})", self.text.join(", ")),
            None => self.text.join(", "),
        }
    }

    /// Where `now` is: inside a span of windows (and when it ends) or outside.
    pub fn standing(&self, now: Timestamp) -> Standing {
        let today = self.zone.date(now);
        let mut spans: Vec<(Timestamp, Timestamp)> = Vec::new();
        let mut day = today;
        for _ in 0..2 {
            day = day.yesterday().unwrap_or(day);
        }
        for _ in 0..(LOOK_DAYS + 2) {
            let offset = usize::try_from(day.weekday().to_monday_zero_offset()).unwrap_or(0);
            for w in self.windows.iter().filter(|w| w.days[offset]) {
                let (Some(a), Some(b)) =
                    (self.zone.moment(day, w.start), self.zone.moment(day, w.end))
                else {
                    continue;
                };
                if a < b {
                    spans.push((a, b));
                }
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        spans.sort();
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let horizon = crate::time::add(now, std::time::Duration::from_secs(14 * 86_400));
        for &(a, b) in &merged {
            if a <= now && now < b {
                return if b >= horizon {
                    Standing::Always
                } else {
                    Standing::Inside { since: a, until: b }
                };
            }
        }
        Standing::Outside {
            since: merged.iter().map(|(_, b)| *b).filter(|b| *b <= now).max(),
            next: merged.iter().map(|(a, _)| *a).find(|a| *a > now),
        }
    }
}

/// One window's text.
fn window(text: &str) -> Result<Window, String> {
    let mut parts = text.split_whitespace();
    let (days, times) = match (parts.next(), parts.next(), parts.next()) {
        (Some(t), None, None) => ([true; 7], t),
        (Some(d), Some(t), None) => (days(d)?, t),
        _ => return Err("expected \"DAYS HH:MM-HH:MM\" or \"HH:MM-HH:MM\"".into()),
    };
    let (start, end) = times
        .split_once('-')
        .ok_or("expected a time range HH:MM-HH:MM")?;
    let (start, end) = (minute(start)?, minute(end)?);
    if start >= 1440 {
        return Err("a window begins at 23:59 at the latest".into());
    }
    if start == end {
        return Err("a window must not be empty (its start and end are the same)".into());
    }
    // An end at or before the start is on the next day.
    let end = if end <= start { end + 1440 } else { end };
    Ok(Window { days, start, end })
}

/// `Mon`, `Mon-Fri`, `Fri-Mon`, `Mon,Wed,Fri`, `Sat-Sun,Wed` (any case).
fn days(text: &str) -> Result<[bool; 7], String> {
    let mut set = [false; 7];
    for part in text.split(',') {
        let one = |name: &str| -> Result<usize, String> {
            let lower = name.trim().to_ascii_lowercase();
            DAYS.iter()
                .position(|d| *d == lower)
                .or_else(|| FULL_DAYS.iter().position(|d| *d == lower))
                .ok_or_else(|| format!("'{name}' is not a weekday (Mon, Tue, ... Sun)"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                let mut d = a;
                loop {
                    set[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => set[one(part)?] = true,
        }
    }
    Ok(set)
}

/// `08:00` → minutes of the day; `24:00` is the end of it.
fn minute(text: &str) -> Result<u16, String> {
    let bad = || format!("'{text}' is not a time HH:MM (00:00 to 24:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Weekday names, Monday first, as policies write them.
pub fn weekday(text: &str) -> Result<Weekday, String> {
    let set = days(text)?;
    match set.iter().filter(|d| **d).count() {
        1 => {
            let at = set.iter().position(|d| *d).unwrap_or(0);
            Weekday::from_monday_zero_offset(i8::try_from(at).unwrap_or(0))
                .map_err(|e| e.to_string())
        }
        _ => Err(format!("'{text}' is not one weekday")),
    }
}

/// `04:00` as minutes of the day (0..1440).
pub fn time_of_day(text: &str) -> Result<u16, String> {
    let m = minute(text)?;
    if m >= 1440 {
        return Err(format!("'{text}' is not a time of day (00:00 to 23:59)"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Zone {
        Zone::named("Europe/Berlin").expect("tzdb")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn hours(windows: &[&str], zone: Zone) -> Hours {
        let texts: Vec<String> = windows.iter().map(ToString::to_string).collect();
        Hours::parse(&texts, zone).expect("parses")
    }

    #[test]
    fn inside_a_window_it_ends_at_the_window_s_end() {
        // 2026-12-07 is a Monday; Berlin is UTC+1 in December.
        let h = hours(&["Mon-Fri 08:00-18:00"], berlin());
        assert_eq!(
            h.standing(at("2026-12-07T10:00:00Z")),
            Standing::Inside {
                since: at("2026-12-07T07:00:00Z"),
                until: at("2026-12-07T17:00:00Z")
            }
        );
    }

    /// The edges: the start is inside, the end is outside (the next window is Tuesday's).
    #[test]
    fn a_window_includes_its_start_and_not_its_end() {
        let h = hours(&["Mon-Fri 08:00-18:00"], berlin());
        assert!(matches!(
            h.standing(at("2026-12-07T07:00:00Z")),
            Standing::Inside { .. }
        ));
        assert_eq!(
            h.standing(at("2026-12-07T17:00:00Z")),
            Standing::Outside {
                since: Some(at("2026-12-07T17:00:00Z")),
                next: Some(at("2026-12-08T07:00:00Z"))
            }
        );
        // Friday evening: next is Monday.
        assert_eq!(
            h.standing(at("2026-12-11T20:00:00Z")),
            Standing::Outside {
                since: Some(at("2026-12-11T17:00:00Z")),
                next: Some(at("2026-12-14T07:00:00Z"))
            }
        );
    }

    #[test]
    fn windows_across_midnight_and_touching_windows_make_one_span() {
        let h = hours(&["Fri 22:00-02:00"], berlin());
        assert_eq!(
            h.standing(at("2026-12-12T00:30:00Z")),
            Standing::Inside {
                since: at("2026-12-11T21:00:00Z"),
                until: at("2026-12-12T01:00:00Z")
            }
        );
        let h = hours(&["Mon-Fri 08:00-12:00", "Mon-Fri 12:00-18:00"], berlin());
        assert!(matches!(
            h.standing(at("2026-12-07T10:00:00Z")),
            Standing::Inside { until, .. } if until == at("2026-12-07T17:00:00Z")
        ));
        let h = hours(&["00:00-24:00"], Zone::named("UTC").expect("utc"));
        assert_eq!(h.standing(at("2026-12-07T10:00:00Z")), Standing::Always);
        let h = hours(&["Mon-Sun 00:00-24:00"], berlin());
        assert_eq!(h.standing(at("2026-12-07T10:00:00Z")), Standing::Always);
    }

    /// DST (Europe/Berlin): on 2026-03-29 clocks go from 02:00 to 03:00; on 2026-10-25 from
    /// 03:00 back to 02:00. A window's times are local: 08:00-18:00 is 10 hours on the
    /// spring day and on the autumn day alike, in UTC shifted by the change; a window that
    /// spans the change is an hour shorter (spring) or longer (autumn).
    #[test]
    fn daylight_saving_changes_move_windows_in_utc_not_in_local_time() {
        let h = hours(&["Sun 08:00-18:00"], berlin());
        assert_eq!(
            h.standing(at("2026-03-29T10:00:00Z")),
            Standing::Inside {
                since: at("2026-03-29T06:00:00Z"),
                until: at("2026-03-29T16:00:00Z")
            }
        );
        assert_eq!(
            h.standing(at("2026-10-25T10:00:00Z")),
            Standing::Inside {
                since: at("2026-10-25T07:00:00Z"),
                until: at("2026-10-25T17:00:00Z")
            }
        );
        // 01:00-04:00 across the spring change: 2 real hours; across the autumn one, 4.
        let h = hours(&["Sun 01:00-04:00"], berlin());
        assert_eq!(
            h.standing(at("2026-03-29T00:30:00Z")),
            Standing::Inside {
                since: at("2026-03-29T00:00:00Z"),
                until: at("2026-03-29T02:00:00Z")
            }
        );
        assert_eq!(
            h.standing(at("2026-10-25T00:30:00Z")),
            Standing::Inside {
                since: at("2026-10-24T23:00:00Z"),
                until: at("2026-10-25T03:00:00Z")
            }
        );
        // A window ending at a skipped time (02:30 on the spring day) ends as much later as
        // the gap is long: at 03:30 local (01:30Z).
        let h = hours(&["Sun 01:00-02:30"], berlin());
        assert!(matches!(
            h.standing(at("2026-03-29T00:30:00Z")),
            Standing::Inside { until, .. } if until == at("2026-03-29T01:30:00Z")
        ));
    }

    #[test]
    fn bad_windows_are_refused_with_what_is_wrong() {
        let bad = |w: &str| Hours::parse(&[w.to_string()], berlin()).expect_err("refused");
        assert!(bad("Mon-Fri 8-18").contains("HH:MM"));
        assert!(bad("Funday 08:00-18:00").contains("not a weekday"));
        assert!(bad("Mon 08:00-08:00").contains("empty"));
        assert!(bad("Mon 25:00-26:00").contains("HH:MM"));
        assert!(bad("Mon 08:00").contains("range"));
        assert!(bad("Mon Tue 08:00-09:00").contains("DAYS"));
        assert!(Hours::parse(&[], berlin()).is_err());
        assert!(Zone::named("Mars/Olympus").is_err());
        // Wrapping day ranges and full names.
        let h = hours(&["Sat-Mon 10:00-11:00", "wednesday 10:00-11:00"], berlin());
        assert_eq!(
            h.windows[0].days,
            [true, false, false, false, false, true, true]
        );
        assert_eq!(
            h.windows[1].days,
            [false, false, true, false, false, false, false]
        );
    }
}
