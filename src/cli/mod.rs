//! The command line front end: parse ([`args`]), then build the plan that touches the system —
//! which host and backend, which sessions — and run it, printing what happened.

pub mod args;
pub mod argv;
pub mod docs;
pub mod places;

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::audit;
use crate::backend::Backend;
use crate::error::{Error, Kind, Result};
use crate::logoff::{self, Done, Log, Options, Outcome, Warning};
use crate::model::Session;
use crate::output::{self, Out, SessionRow};
use crate::select;
use crate::system::interrupt::{self, Stage};
use args::{Args, Mode};
use places::Place;

/// Runs logoff with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    if let Some(how) = crate::system::users::elevated_by_file() {
        output::error_line(&format!(
            "refusing to run with privilege from its file ({how}): logoff is not made to be \
             installed setuid, setgid or with file capabilities; run it with sudo, or use \
             polkit with logind"
        ));
        return ExitCode::from(Kind::InvalidParameters.exit_status());
    }
    let args = match args::parse(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => return invalid_parameters(&e),
    };
    let mut out = Out::default();
    let result = match args.mode {
        Mode::SeedHelp => {
            out.print(args::SEED_USAGE);
            Ok(())
        }
        Mode::Help => {
            out.print(&args::long_help());
            Ok(())
        }
        Mode::Version => {
            out.line(&format!("logoff {}", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        Mode::List => list(&args, &mut out),
        Mode::Logoff => run_logoff(&args, &mut out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == Kind::InvalidParameters && !e.message().is_empty() => {
            invalid_parameters(&e)
        }
        // Already printed (several hosts): the status only.
        Err(e) => {
            if !e.message().is_empty() {
                output::error_line(e.message());
            }
            e.exit_code()
        }
    }
}

/// The original's answer to a bad command line, then what exactly was wrong.
fn invalid_parameters(e: &Error) -> ExitCode {
    output::stderr_text(&format!(
        "{}\n{}\nlogoff: {}\n",
        args::INVALID_PARAMETERS,
        args::SEED_USAGE,
        output::clean(e.message())
    ));
    e.exit_code()
}

/// One place's backend, opened in the worker that uses it.
fn open(args: &Args, place: &Place, ends_sessions: bool) -> Result<Box<dyn Backend>> {
    places::open(
        place,
        args.machine.as_deref(),
        args.backend,
        ends_sessions,
        args.connect_timeout,
        if args.ask_password {
            crate::transport::Auth::Interactive
        } else {
            crate::transport::Auth::Batch
        },
    )
}

/// `/V` lines go to standard output as they happen, prefixed with the host when there are
/// several.
struct Verbose<'a> {
    enabled: bool,
    prefix: String,
    out: &'a Mutex<Out>,
}

impl<'a> Verbose<'a> {
    fn for_place(enabled: bool, multi: bool, place: &Place, out: &'a Mutex<Out>) -> Self {
        Verbose {
            enabled,
            prefix: if multi {
                format!("{}: ", place.label)
            } else {
                String::new()
            },
            out,
        }
    }
}

impl Log for Verbose<'_> {
    fn action(&mut self, line: &str) {
        if self.enabled
            && let Ok(mut out) = self.out.lock()
        {
            out.line(&format!("{}{line}", self.prefix));
        }
    }

    /// Said whether or not `/V` was asked for: on standard error.
    fn problem(&mut self, line: &str) {
        output::error_line(&format!("{}{line}", self.prefix));
    }
}

/// Runs `job` for every place, at most `limit` at once, and returns the results in place
/// order. One place failing or hanging does not hold up the others beyond its own timeouts.
fn for_each_place<R: Send>(
    places: &[Place],
    limit: usize,
    job: impl Fn(&Place) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    if places.len() == 1 || limit <= 1 {
        return places.iter().map(&job).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R>>>> = places.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..limit.min(places.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(place) = places.get(i) else { break };
                    let result = job(place);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::system("a worker thread failed")))
        })
        .collect()
}

/// Prints a place's failure (prefixed with the place when there are several).
fn place_error(multi: bool, place: &Place, e: &Error) {
    if e.message().is_empty() {
        return;
    }
    if multi {
        output::error_line(&format!("{}: {}", place.label, e.message()));
    } else {
        output::error_line(e.message());
    }
}

/// With several places: which of them failed, on standard error.
fn summary(places: &[Place], failed: &[&Place]) {
    if places.len() > 1 && !failed.is_empty() {
        output::error_line(&format!(
            "{} of {} hosts failed: {}",
            failed.len(),
            places.len(),
            failed
                .iter()
                .map(|p| p.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

fn list(args: &Args, out: &mut Out) -> Result<()> {
    let places = places::plan(&args.servers, args.servers_file.as_deref())?;
    let multi = places.len() > 1;
    let shared = Mutex::new(std::mem::take(out));
    let results = for_each_place(&places, args.parallel, |place| {
        let mut backend = open(args, place, false)?;
        Verbose::for_place(args.verbose && !args.json, multi, place, &shared)
            .action(&format!("backend: {}", backend.describe()));
        let sessions = backend.list()?;
        let current = backend.current()?;
        let now = Timestamp::now();
        let shown: Vec<&Session> = if args.sessions.is_empty() && !args.filters.given() {
            sessions.iter().collect()
        } else {
            // The list shows your own session too when it passes the filters.
            select::select(
                &sessions,
                &args.sessions,
                &args.filters,
                current.as_ref(),
                true,
                now,
            )?
        };
        Ok(shown
            .iter()
            .map(|s| {
                SessionRow::new(
                    &place.label,
                    backend.name(),
                    s,
                    current.as_ref() == Some(&s.id),
                    now,
                )
            })
            .collect::<Vec<SessionRow>>())
    });
    *out = shared.into_inner().unwrap_or_default();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    let mut first: Option<Error> = None;
    for (place, result) in places.iter().zip(results) {
        match result {
            Ok(r) => rows.extend(r),
            // One place: its error is the command's, as it always was.
            Err(e) if !multi => return Err(e),
            Err(e) => {
                place_error(multi, place, &e);
                failed.push(place);
                first.get_or_insert(e);
            }
        }
    }
    output::sort_rows(&mut rows);
    if args.json {
        out.print(&to_json(&rows)?);
    } else {
        out.print(&output::session_table(
            &rows,
            multi,
            !args.no_legend,
            &TimeZone::system(),
        ));
    }
    summary(&places, &failed);
    match first {
        Some(e) => Err(Error::new(e.kind(), String::new())),
        None => Ok(()),
    }
}

fn run_logoff(args: &Args, out: &mut Out) -> Result<()> {
    let places = places::plan(&args.servers, args.servers_file.as_deref())?;
    crate::system::process::prepare_descriptors();
    let grace = !args.grace.is_zero() && !args.dry_run;
    interrupt::install().map_err(|e| Error::system(format!("cannot handle Ctrl-C: {e}")))?;
    let multi = places.len() > 1;
    let shared = Mutex::new(std::mem::take(out));
    let finished = AtomicBool::new(false);
    let results = std::thread::scope(|scope| {
        if grace {
            scope.spawn(|| countdown(args.grace, &finished));
        }
        let results = for_each_place(&places, args.parallel, |place| {
            let mut log = Verbose::for_place(args.verbose && !args.json, multi, place, &shared);
            logoff_place(args, place, &mut log)
        });
        finished.store(true, Ordering::SeqCst);
        results
    });
    *out = shared.into_inner().unwrap_or_default();
    if !multi && let Some(Err(e)) = results.first() {
        return Err(e.clone());
    }
    report(args, &places, &results, out)
}

/// Everything a logoff does on one place: list, resolve, check, log off.
fn logoff_place(args: &Args, place: &Place, log: &mut Verbose<'_>) -> Result<Vec<Outcome>> {
    let mut backend = open(args, place, true)?;
    let caller = backend.caller()?;
    log.action(&format!("backend: {}", backend.describe()));
    let sessions = backend.list()?;
    let current = backend.current()?;
    if args.vm
        && let Some(not_an_id) = args
            .sessions
            .iter()
            .find(|a| !sessions.iter().any(|s| &s.id.0 == *a))
    {
        return Err(Error::invalid(format!(
            "/VM needs the session's unique ID: '{not_an_id}' is not the ID of a session"
        )));
    }
    if args.sessions.is_empty()
        && !args.filters.given()
        && current.is_none()
        && place.reach != places::Reach::Local
    {
        return Err(Error::new(
            Kind::NoSuchSession,
            format!(
                "name the session to log off on {}: logoff does not run in a session there",
                place.label
            ),
        ));
    }
    let chosen = select::select(
        &sessions,
        &args.sessions,
        &args.filters,
        current.as_ref(),
        false,
        Timestamp::now(),
    )?;
    let targets: Vec<Session> = chosen.into_iter().cloned().collect();
    if targets.is_empty() {
        // Filters that match nothing: nothing to do is not a failure.
        log.action(&format!(
            "no session matches {}; nothing to log off",
            args.filters.describe()
        ));
        return Ok(Vec::new());
    }
    for s in &targets {
        log.action(&format!(
            "session {} found: user {} (uid {}), {}{}{}",
            s.id,
            s.user,
            s.uid,
            s.name()
                .map(|n| format!("terminal {n}"))
                .unwrap_or_else(|| "no terminal".into()),
            s.processes
                .map(|n| format!(", {}", logoff::plural(n, "process", "processes")))
                .unwrap_or_default(),
            if current.as_ref() == Some(&s.id) {
                " (the current session)"
            } else {
                ""
            }
        ));
    }
    let opts = Options {
        timeout: args.timeout,
        console: args.console,
    };
    // The record and the warning name whoever runs logoff, here (on another host the bus
    // sees only the ssh user).
    let me = crate::system::users::Person::current();
    let audit = |session: &Session, result: &str, detail: Option<&str>, forced: bool| {
        let entry = audit::Entry {
            caller: &me,
            host: &place.label,
            machine: args.machine.as_deref(),
            session,
            grace: args.grace,
            message: args.message.is_some(),
            forced,
            console: args.console,
            result,
            detail,
        };
        if let Err(why) = audit::record(&entry) {
            output::error_line(&format!(
                "cannot write the audit record for {}: {why}",
                session.describe()
            ));
        }
    };
    let refused = |e: Error| {
        for s in &targets {
            audit(s, e.kind().as_str(), Some(e.message()), false);
        }
        e
    };
    logoff::check(backend.as_mut(), &targets, &caller, current.as_ref(), &opts).map_err(refused)?;
    if args.dry_run {
        let mut planned = Vec::new();
        for s in &targets {
            let processes = backend.count(s)?;
            planned.push(Outcome {
                session: s.clone(),
                result: Ok(Done {
                    planned: true,
                    processes,
                    ..Done::default()
                }),
            });
        }
        return Ok(planned);
    }
    let warning = Warning {
        message: args.message.as_deref(),
        grace: args.grace,
        by: format!("{}@{}", me.caller.name, crate::system::host::hostname()),
        cancel: &interrupt::CANCEL,
    };
    // Nothing begins once the caller has asked to stop; what has begun finishes.
    let interrupted = || {
        Error::new(
            Kind::Cancelled,
            "interrupted before logging off began: nobody was logged off",
        )
    };
    let warns = args.message.is_some() || !args.grace.is_zero();
    if warns && !interrupt::begin(Stage::Grace) {
        return Err(refused(interrupted()));
    }
    logoff::warn_and_wait(backend.as_mut(), &targets, &warning, log).map_err(refused)?;
    if !interrupt::begin(Stage::LoggingOff) {
        return Err(refused(interrupted()));
    }
    let outcomes = logoff::run(backend.as_mut(), &targets, current.as_ref(), &opts, log);
    for o in &outcomes {
        match &o.result {
            Ok(done) => audit(
                &o.session,
                "logged-off",
                None,
                args.timeout.is_zero() || done.killed.is_some_and(|k| k > 0),
            ),
            Err(e) => audit(&o.session, e.kind().as_str(), Some(e.message()), true),
        }
    }
    Ok(outcomes)
}

/// Shows the grace period counting down on standard error (when it is a terminal).
fn countdown(grace: Duration, finished: &AtomicBool) {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(grace.as_millis() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "logging off in {msg:>8} [{bar:40}] (Ctrl-C cancels)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let start = Instant::now();
    while !finished.load(Ordering::SeqCst) && !interrupt::CANCEL.load(Ordering::SeqCst) {
        let elapsed = start.elapsed();
        if elapsed >= grace {
            break;
        }
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(crate::duration::display(Duration::from_secs(
            (grace - elapsed).as_secs_f64().ceil() as u64,
        )));
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}

#[derive(Serialize)]
struct OutcomeJson<'a> {
    host: &'a str,
    id: Option<&'a str>,
    user: Option<&'a str>,
    name: Option<&'a str>,
    logged_off: bool,
    dry_run: bool,
    processes: Option<usize>,
    asked: Option<usize>,
    killed: Option<usize>,
    seconds: Option<f64>,
    error: Option<ErrorJson<'a>>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    kind: &'a str,
    message: &'a str,
}

impl<'a> ErrorJson<'a> {
    fn of(e: &'a Error) -> ErrorJson<'a> {
        ErrorJson {
            kind: e.kind().as_str(),
            message: e.message(),
        }
    }
}

/// Prints each outcome (errors on standard error, or everything as JSON) and returns the
/// first failure, whose kind sets the exit status.
fn report(
    args: &Args,
    places: &[Place],
    results: &[Result<Vec<Outcome>>],
    out: &mut Out,
) -> Result<()> {
    let multi = places.len() > 1;
    if args.json {
        let mut rows: Vec<OutcomeJson> = Vec::new();
        for (place, result) in places.iter().zip(results) {
            match result {
                Ok(outcomes) => rows.extend(outcomes.iter().map(|o| OutcomeJson {
                    host: &place.label,
                    id: Some(&o.session.id.0),
                    user: Some(&o.session.user),
                    name: o.session.name(),
                    logged_off: o.result.as_ref().is_ok_and(|d| !d.planned),
                    dry_run: args.dry_run,
                    processes: o.result.as_ref().ok().and_then(|d| d.processes),
                    asked: o.result.as_ref().ok().and_then(|d| d.asked),
                    killed: o.result.as_ref().ok().and_then(|d| d.killed),
                    seconds: o.result.as_ref().ok().map(|d| d.elapsed.as_secs_f64()),
                    error: o.result.as_ref().err().map(ErrorJson::of),
                })),
                Err(e) => rows.push(OutcomeJson {
                    host: &place.label,
                    id: None,
                    user: None,
                    name: None,
                    logged_off: false,
                    dry_run: args.dry_run,
                    processes: None,
                    asked: None,
                    killed: None,
                    seconds: None,
                    error: Some(ErrorJson::of(e)),
                }),
            }
        }
        out.print(&to_json(&rows)?);
    }
    if args.dry_run && !args.json {
        for (place, result) in places.iter().zip(results) {
            for o in result.iter().flatten() {
                let processes = match o.result.as_ref().ok().and_then(|d| d.processes) {
                    Some(n) => format!(": {}", logoff::plural(n, "process", "processes")),
                    None => String::new(),
                };
                let on = if multi {
                    format!(" on {}", place.label)
                } else {
                    String::new()
                };
                out.line(&format!(
                    "would log off {}{on}{processes}",
                    o.session.describe()
                ));
            }
        }
    }
    let mut first: Option<Error> = None;
    let mut failed = Vec::new();
    for (place, result) in places.iter().zip(results) {
        let errors: Vec<&Error> = match result {
            Ok(outcomes) => outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().err())
                .collect(),
            Err(e) => vec![e],
        };
        if !errors.is_empty() {
            failed.push(place);
        }
        for e in errors {
            if !args.json {
                place_error(multi, place, e);
            }
            first.get_or_insert_with(|| e.clone());
        }
    }
    if !args.json {
        summary(places, &failed);
    }
    match first {
        // Already printed: carry the exit status only.
        Some(e) => Err(Error::new(e.kind(), String::new())),
        None => Ok(()),
    }
}

/// JSON (see [`output::json`]), with its line end.
fn to_json<T: Serialize>(value: &T) -> Result<String> {
    output::json(value)
        .map(|j| j + "\n")
        .map_err(|e| Error::system(format!("cannot write JSON: {e}")))
}
