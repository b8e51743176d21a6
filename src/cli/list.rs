//! `--list`: every place's sessions, in one table (with a HOST column for several) or JSON.

use std::sync::Mutex;

use jiff::tz::TimeZone;

use super::fleet::{Narrator, for_each_place};
use super::invocation::Listing;
use super::progress::{HostTicket, Progress};
use crate::backend::{Purpose, Sources};
use crate::error::{Error, Kind, Result, most_severe};
use crate::logoff::Hooks;
use crate::model::Session;
use crate::output::report::{failure_line, summary};
use crate::output::table::{SessionRow, session_table, sort_rows};
use crate::output::{self, Out};
use crate::remote::Place;
use crate::select::{self, OwnSession};

/// Lists the sessions of every place. With several places, each place's failure is printed
/// here, and the most severe kind among them is returned (for the exit status); with one,
/// its failure is the command's error.
pub fn run(listing: &Listing, out: &mut Out) -> Result<Option<Kind>> {
    let reach = &listing.reach;
    let progress = Progress::new(reach.json, reach.verbose, reach.places.len());
    let shared = Mutex::new(std::mem::take(out));
    let results = for_each_place(&reach.places, reach.parallel, |place| {
        let ticket = progress.start_host();
        let result = rows(listing, place, &shared, &progress, &ticket);
        ticket.finish(result.is_err());
        if let Err(e) = &result
            && progress.prints_as_hosts_end()
        {
            progress.error_line(&failure_line(true, &place.label, e));
        }
        result
    });
    progress.finish();
    *out = shared.into_inner().unwrap_or_default();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (place, result) in reach.places.iter().zip(results) {
        match result {
            Ok(r) => rows.extend(r),
            // One place: its error is the command's, as it always was.
            Err(e) if !reach.several() => return Err(e),
            Err(e) => {
                if !progress.prints_as_hosts_end() {
                    output::error_line(&failure_line(true, &place.label, &e));
                }
                failed.push((place.label.as_str(), e));
            }
        }
    }
    sort_rows(&mut rows);
    if reach.json {
        out.print(&output::json(&rows).map_err(|e| json_error(&e))?);
        out.print("\n");
    } else {
        out.print(&session_table(
            &rows,
            reach.several(),
            listing.legend,
            &TimeZone::system(),
        ));
    }
    let labels: Vec<&str> = failed.iter().map(|(l, _)| *l).collect();
    if let Some(line) = summary(reach.places.len(), &labels) {
        output::error_line(&line);
    }
    Ok(most_severe(failed.iter().map(|(_, e)| e)))
}

/// One place's rows.
fn rows(
    listing: &Listing,
    place: &Place,
    out: &Mutex<Out>,
    progress: &Progress,
    ticket: &HostTicket<'_>,
) -> Result<Vec<SessionRow>> {
    let reach = &listing.reach;
    let mut opened = crate::remote::open(place, reach.backend, Purpose::List, &reach.connect)?;
    ticket.connected();
    let mut narrator = Narrator::new(reach.verbose, reach.several(), place, out, None, progress);
    narrator.narrate(&format!("backend: {}", opened.describe()));
    let backend = opened.backend.as_mut();
    let mut sessions = backend.list()?;
    backend.observe(&mut sessions, Sources::default())?;
    for s in &sessions {
        for note in &s.notes {
            narrator.narrate(&format!("session {}: {note}", s.id));
        }
    }
    drop(narrator);
    let current = backend.current()?;
    let now = crate::time::now();
    let shown: Vec<&Session> = if listing.sessions.is_empty() && !listing.filters.given() {
        sessions.iter().collect()
    } else {
        // The list shows your own session too when it passes the filters.
        select::select(
            &sessions,
            &listing.sessions,
            &listing.filters,
            current.as_ref(),
            OwnSession::Include,
            now,
        )?
    };
    let presences: std::collections::HashMap<_, _> = sessions
        .iter()
        .map(|s| &s.id)
        .zip(crate::presence::judge(&sessions, now))
        .collect();
    let presence_of = |s: &Session| presences.get(&s.id);
    let flavor = backend.about().0;
    // The deadlines a logoffd running here has published (this host's only).
    let limits = place
        .is_this_host()
        .then(crate::daemon::published::Deadlines::published)
        .flatten();
    Ok(shown
        .iter()
        .filter_map(|s| Some((*s, presence_of(s)?)))
        .map(|(s, p)| {
            let is_current = current.as_ref() == Some(&s.id);
            let mut row = SessionRow::new(&place.label, flavor.as_str(), (s, p), is_current, now);
            row.agent = opened.agent.clone();
            row.time_limit = limits.as_ref().and_then(|l| l.of(&s.key())).cloned();
            row.allowance_left_seconds = row
                .time_limit
                .as_ref()
                .and_then(|l| l.allowance.as_ref())
                .and_then(|a| a.left(now))
                .map(|d| d.as_secs());
            row
        })
        .collect())
}

fn json_error(e: &serde_json::Error) -> Error {
    Error::system(format!("cannot write JSON: {e}"))
}
