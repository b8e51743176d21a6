//! The session list: a table in the spirit of `quser`/`query session`, or JSON with the
//! same data under stable keys.

use comfy_table::{CellAlignment, ContentArrangement, Table};
use jiff::{Timestamp, tz::TimeZone};
use serde::Serialize;

use super::clean;
use crate::model::{Session, SessionId, id_sort_key};
use crate::policy::time_limit::TimeLimit;
use crate::presence::{Connected, Presence};

/// One session as `--list` and `--json` show it. These keys are the stable JSON interface
/// (documented in README.md); a key is never renamed, new keys may be added.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionRow {
    pub host: String,
    pub id: String,
    pub name: Option<String>,
    pub user: String,
    pub uid: Option<u32>,
    pub tty: Option<String>,
    pub display: Option<String>,
    pub seat: Option<String>,
    pub vtnr: Option<u32>,
    pub state: String,
    pub class: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub service: Option<String>,
    pub remote: bool,
    /// Where it came from is not known (`remote` then says nothing): see
    /// [`Session::origin_unknown`](crate::model::Session::origin_unknown).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub origin_unknown: bool,
    /// Where it came from, as something root's vouches for it (what filters and policies
    /// match).
    pub remote_host: Option<String>,
    /// Where a user's text says it came from, where nothing vouches for it: shown, never
    /// matched.
    pub remote_host_claim: Option<String>,
    /// Where the claim was read: `utmp`, `environment`.
    pub remote_host_claim_source: Option<String>,
    pub idle_since: Option<Timestamp>,
    pub idle_seconds: Option<u64>,
    /// What told its idle time: `terminal pts/3`, `display :10`, `tmux client in session 12
    /// (pts/5)`, `logind's idle hint`.
    pub idle_source: Option<String>,
    /// The session of the same user that uses it through tmux or screen.
    pub in_use_by: Option<String>,
    /// Whether a live client reaches it (`null`: not known; see `connection_unknown`).
    pub connected: Option<bool>,
    /// What connects it: `ssh`, `rdp`, `login`, `terminal pts/3`, `input on pts/4`, `tmux
    /// client of session 12`, `forward from session 12`, `unix socket from session 12`.
    pub connected_by: Option<String>,
    /// Why whether it is connected is not known.
    pub connection_unknown: Option<String>,
    pub logon_time: Option<Timestamp>,
    pub leader: Option<i32>,
    pub processes: Option<usize>,
    pub current: bool,
    pub backend: String,
    /// The version of the host's own logoff that listed it, where the host was reached
    /// through it (`logoff --remote-agent`: hosts without systemd-stdio-bridge).
    pub agent: Option<String>,
    /// The deadline logoffd has this session under, where it runs (this host only).
    pub time_limit: Option<TimeLimit>,
    /// What is left of its user's allowance (seconds), where logoffd's rule gives one.
    pub allowance_left_seconds: Option<u64>,
}

impl SessionRow {
    pub fn new(
        host: &str,
        backend: &str,
        (s, p): (&Session, &Presence),
        current: bool,
        now: Timestamp,
    ) -> Self {
        SessionRow {
            host: host.to_string(),
            id: s.id.to_string(),
            name: s.name().map(String::from),
            user: s.user.clone(),
            uid: s.uid.map(crate::model::Uid::as_raw),
            tty: s.tty.clone().filter(|t| !t.is_empty()),
            display: s.display.clone().filter(|d| !d.is_empty()),
            seat: s.seat.clone().filter(|t| !t.is_empty()),
            vtnr: s.vtnr.filter(|&v| v > 0),
            state: p.state(s).to_string(),
            class: s.class.clone(),
            kind: s.kind.clone(),
            service: s.service.clone(),
            remote: s.remote,
            origin_unknown: s.origin_unknown,
            remote_host: s.remote_host.clone().filter(|h| !h.is_empty()),
            remote_host_claim: s.remote_claim.as_ref().map(|c| c.value.clone()),
            remote_host_claim_source: s.remote_claim.as_ref().map(|c| c.source.to_string()),
            idle_since: p.idle.as_ref().map(|i| i.since),
            idle_source: p.idle.as_ref().map(|i| i.source.to_string()),
            in_use_by: p.in_use_by().map(ToString::to_string),
            connected: p.is_connected(),
            connected_by: p.by().map(ToString::to_string),
            connection_unknown: match &p.connected {
                Connected::Unknown(why) => Some(why.clone()),
                _ => None,
            },
            idle_seconds: p.idle_for(now).map(|d| d.as_secs()),
            logon_time: s.logon_time,
            leader: s.leader.map(crate::model::Pid::as_raw),
            processes: s.processes,
            current,
            backend: backend.to_string(),
            agent: None,
            time_limit: None,
            allowance_left_seconds: None,
        }
    }
}

/// Sorts rows by host, then by session ID as loginctl does.
pub fn sort_rows(rows: &mut [SessionRow]) {
    rows.sort_by(|a, b| {
        a.host.cmp(&b.host).then_with(|| {
            id_sort_key(&SessionId::new(a.id.as_str()))
                .cmp(&id_sort_key(&SessionId::new(b.id.as_str())))
        })
    });
}

/// Idle time as quser prints it: `.` under a minute, `M`, `H:MM`, `D+HH:MM`; `-` unknown.
pub fn format_idle(seconds: Option<u64>) -> String {
    let Some(secs) = seconds else {
        return "-".into();
    };
    let minutes = secs / 60;
    if minutes == 0 {
        ".".into()
    } else if minutes < 60 {
        minutes.to_string()
    } else if minutes < 24 * 60 {
        format!("{}:{:02}", minutes / 60, minutes % 60)
    } else {
        let days = minutes / (24 * 60);
        let rest = minutes % (24 * 60);
        format!("{}+{:02}:{:02}", days, rest / 60, rest % 60)
    }
}

/// A time in the local time zone, to the minute; `-` unknown.
pub fn format_logon(time: Option<Timestamp>, tz: &TimeZone) -> String {
    time.map_or_else(
        || "-".into(),
        |t| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

fn dash(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".into(),
    }
}

/// Which of logoffd's columns the table has.
#[derive(Debug, Clone, Copy)]
struct Limits {
    allowance: bool,
    deadlines: bool,
}

/// One row's cells, in the order of the header.
fn cells(r: &SessionRow, with_host: bool, limits: Limits, tz: &TimeZone) -> Vec<String> {
    let mut cells = Vec::new();
    if with_host {
        cells.push(r.host.clone());
        cells.push(match r.agent {
            Some(_) => format!("{} (agent)", r.backend),
            None => r.backend.clone(),
        });
    }
    let marker = if r.current { ">" } else { " " };
    let from = match (&r.remote_host, r.remote) {
        (Some(h), _) => h.clone(),
        // A user's claim is shown as one.
        (None, _) if r.remote_host_claim.is_some() => format!(
            "{} (claimed)",
            r.remote_host_claim.as_deref().unwrap_or_default()
        ),
        (None, true) => "remote".into(),
        (None, false) if r.seat.is_some() || r.vtnr.is_some() => "local".into(),
        (None, false) => match r.tty.as_deref() {
            Some(t) if t == "console" || crate::model::is_virtual_terminal(t) => "local".into(),
            _ => "-".into(),
        },
    };
    cells.extend([
        format!("{marker}{}", dash(r.name.as_deref())),
        dash(Some(&r.user)),
        r.id.clone(),
        dash(Some(&r.state)),
        format_idle(r.idle_seconds),
        format_logon(r.logon_time, tz),
        from,
    ]);
    if limits.allowance {
        cells.push(r.allowance_left_seconds.map_or_else(
            || "-".into(),
            |s| crate::duration::display(std::time::Duration::from_secs(s)),
        ));
    }
    if limits.deadlines {
        cells.push(r.time_limit.as_ref().map_or_else(
            || "-".into(),
            |l| {
                format!(
                    "{} ({})",
                    format_logon(Some(l.logoff_at), tz),
                    l.reason.as_str()
                )
            },
        ));
    }
    cells
}

/// A table as logoff prints them all (loginctl's look: no rules, columns apart, the header
/// first unless `header` is `None`, trailing blanks cut). Every cell is cleaned of what would
/// act on the terminal; the columns of `right` are right-aligned.
pub fn render(header: Option<&[&str]>, rows: &[Vec<String>], right: &[usize]) -> String {
    let mut table = Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if let Some(header) = header {
        table.set_header(header.iter().copied());
    }
    for row in rows {
        table.add_row(row.iter().map(|c| clean(c).into_owned()));
    }
    for &at in right {
        if let Some(col) = table.column_mut(at) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The session table. `with_host` adds a HOST column (several hosts).
pub fn session_table(rows: &[SessionRow], with_host: bool, legend: bool, tz: &TimeZone) -> String {
    if rows.is_empty() {
        // As loginctl says it; nothing at all without the legend.
        return if legend {
            "No sessions.\n".into()
        } else {
            String::new()
        };
    }
    let mut header = Vec::new();
    if with_host {
        header.extend(["HOST", "BACKEND"]);
    }
    header.extend([
        " SESSIONNAME",
        "USERNAME",
        "ID",
        "STATE",
        "IDLE TIME",
        "LOGON TIME",
        "FROM",
    ]);
    let limits = Limits {
        allowance: rows.iter().any(|r| r.allowance_left_seconds.is_some()),
        deadlines: rows.iter().any(|r| r.time_limit.is_some()),
    };
    if limits.allowance {
        header.push("ALLOWANCE LEFT");
    }
    if limits.deadlines {
        header.push("LOGOFF AT");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cells(r, with_host, limits, tz))
        .collect();
    let id_column = if with_host { 4 } else { 2 };
    let mut out = render(legend.then_some(header.as_slice()), &cells, &[id_column]);
    if legend {
        out.push('\n');
        out.push_str(&format!(
            "{} session{} listed.\n",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Pid, Uid};

    fn row(id: &str, current: bool) -> SessionRow {
        let now: Timestamp = "2026-11-24T12:00:00Z".parse().expect("ts");
        let s = Session {
            id: SessionId::new(id),
            uid: Some(Uid::from_raw(1001)),
            user: "bob".into(),
            tty: Some("pts/3".into()),
            state: "active".into(),
            remote: true,
            remote_host: Some("10.0.0.5".into()),
            activity: crate::model::Activity::typed_at(Some(
                "2026-11-24T11:55:00Z".parse().expect("ts"),
            )),
            login: crate::model::Login::Logind(crate::model::Origin::Ssh),
            logon_time: Some("2026-11-24T10:05:00Z".parse().expect("ts")),
            leader: Some(Pid::from_raw(4242)),
            processes: Some(3),
            ..Session::default()
        };
        let p = crate::presence::judge(std::slice::from_ref(&s), now).remove(0);
        SessionRow::new("h1", "procfs", (&s, &p), current, now)
    }

    #[test]
    fn idle_like_quser() {
        assert_eq!(format_idle(None), "-");
        assert_eq!(format_idle(Some(59)), ".");
        assert_eq!(format_idle(Some(5 * 60)), "5");
        assert_eq!(format_idle(Some(65 * 60)), "1:05");
        assert_eq!(
            format_idle(Some((2 * 24 * 60 + 3 * 60 + 4) * 60)),
            "2+03:04"
        );
    }

    #[test]
    fn table_marks_current_and_dashes_empty() {
        let mut r2 = row("12", false);
        r2.remote_host = None;
        r2.remote = false;
        r2.tty = None;
        r2.name = None;
        r2.idle_seconds = None;
        r2.logon_time = None;
        let text = session_table(&[row("7", true), r2], false, true, &TimeZone::UTC);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("SESSIONNAME") && lines[0].contains("LOGON TIME"));
        assert!(lines[1].contains(">pts/3"), "{text}");
        assert!(lines[1].contains("2026-11-24 10:05"), "{text}");
        assert!(lines[1].contains("10.0.0.5"), "{text}");
        assert!(lines[1].contains(" 5 "), "idle minutes: {text}");
        // What is unknown shows as "-": the name, the idle and logon times, FROM.
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells, ["-", "bob", "12", "active", "-", "-", "-"], "{text}");
        assert!(text.ends_with("\n2 sessions listed.\n"), "{text}");
        // ID column right-aligned: "7" lines up under the last digit of "12".
        let pos7 = lines[1].find(" 7 ").expect("7") + 1;
        let pos12 = lines[2].find("12").expect("12") + 1;
        assert_eq!(pos7, pos12, "{text}");
    }

    #[test]
    fn empty_list() {
        assert_eq!(
            session_table(&[], false, true, &TimeZone::UTC),
            "No sessions.\n"
        );
        assert_eq!(session_table(&[], false, false, &TimeZone::UTC), "");
    }

    #[test]
    fn no_legend_drops_header_and_count() {
        let text = session_table(&[row("7", false)], false, false, &TimeZone::UTC);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains("listed"));
    }

    #[test]
    fn host_column() {
        let text = session_table(&[row("7", false)], true, true, &TimeZone::UTC);
        assert!(
            text.lines()
                .next()
                .expect("header")
                .trim_start()
                .starts_with("HOST")
        );
        assert!(text.contains("h1"));
    }

    #[test]
    fn several_hosts_show_each_ones_backend() {
        let mut relayed = row("85", false);
        relayed.host = "h2".into();
        relayed.backend = "logind".into();
        relayed.agent = Some("0.2.0".into());
        let text = session_table(&[row("7", false), relayed], true, true, &TimeZone::UTC);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0][..3], ["HOST", "BACKEND", "SESSIONNAME"], "{text}");
        assert_eq!(lines[1][..3], ["h1", "procfs", "pts/3"], "{text}");
        assert_eq!(
            lines[2][..4],
            ["h2", "logind", "(agent)", "pts/3"],
            "{text}"
        );
        // One host: no such column.
        let one = session_table(&[row("7", false)], false, true, &TimeZone::UTC);
        assert!(!one.contains("BACKEND"), "{one}");
    }

    #[test]
    fn json_keys_are_stable() {
        let v = serde_json::to_value(row("7", true)).expect("json");
        for key in [
            "host",
            "id",
            "name",
            "user",
            "uid",
            "tty",
            "display",
            "seat",
            "vtnr",
            "state",
            "class",
            "type",
            "service",
            "remote",
            "remote_host",
            "idle_since",
            "idle_seconds",
            "logon_time",
            "leader",
            "processes",
            "current",
            "backend",
            "agent",
        ] {
            assert!(v.get(key).is_some(), "key {key} missing");
        }
        assert_eq!(v["idle_seconds"], 300);
        assert_eq!(v["uid"], 1001);
        assert_eq!(v["logon_time"], "2026-11-24T10:05:00Z");
        assert_eq!(v["idle_since"], "2026-11-24T11:55:00Z");
    }
}
