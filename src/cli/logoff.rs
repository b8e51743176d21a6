//! A logoff on every place the command names: the flow ([`crate::logoff::execute`]) on each,
//! then what happened, printed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::fleet::{AuditFacts, Narrator, countdown, for_each_place};
use super::invocation::Logoff;
use super::progress::{Progress, TICK};
use super::signals::Signals;
use crate::backend::{self, Purpose};
use crate::error::{Kind, Result, most_severe};
use crate::logoff::{self, Ending, Hooks, Options, Outcome, Warning};
use crate::output::report::{self, HostResult, failure_line};
use crate::output::{self, Out};
use crate::remote::{HostRef, Place};
use crate::system::users::Person;

/// Logs off on every place. Each place's failures are printed here, and the most severe kind
/// among them returned (for the exit status); with one place, a failure of the place as a
/// whole is the command's error.
pub fn run(command: &Logoff, out: &mut Out) -> Result<Option<Kind>> {
    // The record and the warning name whoever runs logoff, here.
    let person = Person::current();
    let log = crate::audit::AuditLog::open();
    let lost = AtomicUsize::new(0);
    let facts = AuditFacts {
        log: &log,
        lost: &lost,
        context: crate::audit::Context {
            action: command.action,
            caller: &person,
            host: "",
            machine: None,
            grace: command.grace,
            message: command.message.is_some(),
            console: command.console,
            timeout: command.timeout,
            policy: None,
        },
    };
    let reach = &command.reach;
    let progress = Progress::new(reach.json, reach.verbose, reach.places.len());
    let shared = Mutex::new(std::mem::take(out));
    let finished = AtomicBool::new(false);
    let results = std::thread::scope(|scope| {
        if !command.grace.is_zero() && !command.dry_run {
            scope.spawn(|| countdown(command.grace, &finished));
        }
        let results = for_each_place(&reach.places, reach.parallel, |place| {
            let at = Where {
                place,
                out: &shared,
                progress: &progress,
            };
            on_place(command, &at, &facts)
        });
        finished.store(true, Ordering::SeqCst);
        results
    });
    progress.finish();
    *out = shared.into_inner().unwrap_or_default();
    let lost = lost.load(Ordering::SeqCst);
    if lost > 1 {
        output::error_line(&format!(
            "{lost} audit records could not be written (the first failure is said above)"
        ));
    }
    if !reach.several()
        && let Some(Err(e)) = results.first()
    {
        return Err(e.clone());
    }
    let hosts: Vec<HostResult> = reach
        .places
        .iter()
        .zip(&results)
        .map(|(place, result)| HostResult {
            label: &place.label,
            result,
        })
        .collect();
    Ok(print(command, &hosts, progress.prints_as_hosts_end(), out))
}

/// One place of a run, and what is shared with the others.
struct Where<'a> {
    place: &'a Place,
    out: &'a Mutex<Out>,
    progress: &'a Progress,
}

/// Everything a logoff does on one place, and its progress: connecting, done; with hosts
/// counted, its failures printed as it ends.
fn on_place(command: &Logoff, at: &Where<'_>, facts: &AuditFacts<'_>) -> Result<Vec<Outcome>> {
    let ticket = at.progress.start_host();
    let result = crate::remote::open(
        at.place,
        command.reach.backend,
        Purpose::EndSessions,
        &command.reach.connect,
    )
    .and_then(|opened| {
        ticket.connected();
        run_flow(command, at, opened, facts)
    });
    ticket.finish(failed(&result));
    if at.progress.prints_as_hosts_end() {
        let label = at.place.label.as_str();
        let host = [HostResult {
            label,
            result: &result,
        }];
        for (_, e) in report::failures(&host) {
            at.progress.error_line(&failure_line(true, label, e));
        }
    }
    result
}

fn failed(result: &Result<Vec<Outcome>>) -> bool {
    result
        .as_ref()
        .map_or(true, |outcomes| outcomes.iter().any(|o| o.result.is_err()))
}

/// The flow on one place, on its backend.
fn run_flow(
    command: &Logoff,
    at: &Where<'_>,
    mut opened: backend::Opened,
    facts: &AuditFacts<'_>,
) -> Result<Vec<Outcome>> {
    let reach = &command.reach;
    let place = at.place;
    let mut hooks = Narrator::new(
        reach.verbose,
        reach.several(),
        place,
        at.out,
        Some(facts),
        at.progress,
    );
    hooks.narrate(&format!("backend: {}", opened.describe()));
    let warning = Warning {
        action: command.action,
        message: command.message.as_deref(),
        grace: command.grace,
        by: format!(
            "{}@{}",
            facts.context.caller.caller.name,
            crate::system::host::hostname()
        ),
    };
    let elsewhere = matches!(place.host, HostRef::Ssh(_)).then_some(place.label.as_str());
    let ending = Ending {
        options: Options {
            timeout: command.timeout,
            console: command.console,
            tick: at.progress.is_drawn().then_some(TICK),
        },
        warning,
        dry_run: command.dry_run,
        action: command.action,
    };
    logoff::execute(
        opened.backend.as_mut(),
        &command.request,
        elsewhere,
        &ending,
        &Signals,
        &mut hooks,
    )
}

/// Prints what happened: JSON, or the dry run's lines; every failure on standard error with
/// its host when there are several (unless printed as each host ended), and which hosts
/// failed. Returns the most severe kind.
fn print(
    command: &Logoff,
    hosts: &[HostResult<'_>],
    failures_printed: bool,
    out: &mut Out,
) -> Option<Kind> {
    let several = hosts.len() > 1;
    if command.reach.json {
        match report::json(hosts, command.dry_run, command.action) {
            Ok(text) => out.print(&format!("{text}\n")),
            Err(e) => output::error_line(&format!("cannot write JSON: {e}")),
        }
    } else if command.dry_run {
        for line in report::dry_run_lines(hosts, command.action) {
            out.line(&line);
        }
    }
    let failures = report::failures(hosts);
    if !command.reach.json {
        for (host, e) in failures.iter().filter(|_| !failures_printed) {
            output::error_line(&failure_line(several, host, e));
        }
        let labels: Vec<&str> = failures.iter().map(|(h, _)| *h).collect();
        if let Some(line) = report::summary(hosts.len(), &labels) {
            output::error_line(&line);
        }
    }
    most_severe(failures.iter().map(|(_, e)| *e))
}
