//! `logoffd`: session time limits, enforced. It reads the policy ([`crate::policy`]), looks
//! at this host's sessions, and each pass hands what it saw to the planner ([`planner`], pure),
//! whose decisions — warn, call a warned logoff off, log off — are carried out by [`act`]
//! with the command's own end of a session ([`crate::logoff::end`]) and audit record.
//!
//! It sleeps until the planner's next moment (a warning, a limit, or the policy's scan
//! interval), waking early for signals and, where logind runs, for its SessionNew and
//! SessionRemoved ([`events`]). SIGHUP reloads the policy (a broken one is reported and the
//! old one stays); SIGTERM stops, telling the users of sessions under a warning that their
//! logoff is off. What must survive a restart lives in the state directory ([`state`]).

mod act;
mod check;
mod clock;
mod events;
mod log;
mod looks;
mod metrics;
mod notice;
mod planner;
pub(crate) mod published;
mod state;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use jiff::Timestamp;

use crate::backend::{Backend, Choice, Flavor, Purpose};
use crate::error::{DaemonStatus, Result};
use crate::model::{Session, Uid};
use crate::policy::time_limit::TimeLimit;
use crate::policy::{self, Policy};
use crate::time::{self, Clock, SystemClock};
use act::Actor;
use events::Event;
use log::{Log, notify};
use looks::Looks;
use metrics::Exporter;
use planner::{Delivery, Tracking};
use published::{Deadlines, Writer};
use state::{Memory, StateDir};

/// How soon a pass that failed (logind unreachable, say) is tried again, at most.
const RETRY: Duration = Duration::from_secs(30);

const ABOUT: &str = "Enforces session time limits: logs off idle, disconnected and \
                     long-running sessions by policy, with warnings users can act on";

const LONG_ABOUT: &str = "\
logoffd applies the session time limits of a policy file (see logoff-policy(5)): for each \
session, the first rule whose match takes it sets its limits — idle (active but idle), \
disconnected (since nothing connects it: no login, RDP client, mosh input, or client from \
another live session of the user) and max_age (since logon). Users are \
warned on their terminals and displays ahead of the deadline; an idle session that is used \
again keeps going, and its user is told. At the deadline the session is logged off as \
`logoff` does it (SIGHUP and SIGTERM, the rule's timeout, SIGKILL, verified gone) and an audit \
record names the rule and the reason.

Root's sessions, the console and greeter or service-manager sessions are left alone unless a \
rule names them. mode = \"dry-run\" logs what would happen and touches nothing; mode = \
\"warn-only\" warns but logs nobody off.

logoffd runs in the foreground, logging to standard error and the journal (where no journal \
runs, to syslog, facility daemon); SIGHUP reloads the policy (a broken file is reported and \
the policy in force stays), SIGTERM stops. Under systemd, logoffd.service runs it \
(Type=notify); under sysvinit, /etc/init.d/logoffd (start, stop, reload, status).

After each pass logoffd writes its metrics for Prometheus (sessions by state and class; \
warnings, cancellations, logoffs, disconnects and failures by rule and reason, counters kept \
across restarts; the pass's duration) to logoffd.prom in the node exporter's textfile \
directory, the policy's metrics_dir (/var/lib/prometheus/node-exporter by default), when that \
directory exists.";

/// The command line of `logoffd`.
#[derive(Debug, Parser)]
#[command(name = "logoffd", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(
    after_help = "Exit status: 0 success (with --check: the policy is valid); 1 a \
                        system error (sessions cannot be listed, the state directory cannot \
                        be used); 2 an invalid policy or command line."
)]
pub struct DaemonArgs {
    /// The policy file
    #[arg(long, value_name = "FILE", default_value = policy::DEFAULT_PATH)]
    pub policy: PathBuf,
    /// Where clocks that survive a restart, and the published deadlines, are kept
    #[arg(long, value_name = "DIR", default_value = state::DEFAULT_DIR)]
    pub state_dir: PathBuf,
    /// Where sessions come from
    #[arg(long, value_enum, default_value_t = Choice::Auto)]
    pub backend: Choice,
    /// Check the policy and show what it would do now with each session; then exit
    #[arg(long)]
    pub check: bool,
    /// With --check: print JSON
    #[arg(long, requires = "check")]
    pub json: bool,
}

/// The clap definition (for the man page).
pub fn command() -> clap::Command {
    DaemonArgs::command()
}

/// The `logoffd` executable.
pub fn main() -> ExitCode {
    crate::system::descriptors::close_inherited_on_exec();
    if let Some(how) = crate::system::users::elevated_by_file() {
        eprintln!("logoffd: refusing to run with privilege from its file ({how})");
        return ExitCode::from(DaemonStatus::Invalid);
    }
    let args = match DaemonArgs::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                DaemonStatus::Invalid
            } else {
                DaemonStatus::Stopped
            });
        }
    };
    let policy = match policy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "logoffd: {}: {e}",
                crate::output::clean(&args.policy.display().to_string())
            );
            return ExitCode::from(DaemonStatus::Invalid);
        }
    };
    if args.check {
        return check(&args, &policy);
    }
    run(&args, policy)
}

fn check(args: &DaemonArgs, policy: &Policy) -> ExitCode {
    let mut memory = check::memory(&args.state_dir);
    let listed = crate::backend::open_here(args.backend, Purpose::List).and_then(|mut o| {
        let (mut sessions, _) = act::look(o.backend.as_mut(), policy, None)?;
        memory.lend(&mut sessions);
        // What was used since the daemon's last pass (not kept: the daemon's to keep).
        let gap = policy.scan_interval.saturating_mul(2);
        memory.account(policy, &sessions, SystemClock.now(), gap);
        // A CPU rate needs two readings: the daemon's last, and this one.
        memory.observe_cpu(&sessions, SystemClock.now(), check::CPU_WINDOW);
        Ok(sessions)
    });
    let sessions = match listed {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logoffd: {e}");
            return ExitCode::from(DaemonStatus::Failed);
        }
    };
    let out = check::report(
        &args.policy,
        policy,
        &sessions,
        &memory,
        SystemClock.now(),
        args.json,
    );
    print!("{out}");
    if args.json {
        println!();
    }
    ExitCode::from(DaemonStatus::Stopped)
}

/// The daemon's state between passes.
struct Daemon {
    policy: Policy,
    lister: Box<dyn Backend>,
    state: StateDir,
    memory: Memory,
    tracking: Tracking,
    looks: Looks,
    published: Option<BTreeMap<String, TimeLimit>>,
    actor: Actor,
    /// The metrics' writer (none if its thread could not start: logged).
    exporter: Option<Exporter>,
    /// Steady time, which no step of the wall clock moves ([`clock`]).
    clock: clock::Steady,
    /// How long the pass before took: time between passes that logoffd saw (an allowance
    /// counts it all; only time beyond it and the scan interval went unseen).
    took_before: Duration,
}

impl Daemon {
    fn new(policy: Policy, choice: Choice, state: StateDir, log: Log) -> Result<Daemon> {
        let lister = crate::backend::open_here(choice, Purpose::List)?.backend;
        let (memory, problem) = Memory::load(&state);
        if let Some(p) = problem {
            log.warn(&p);
        }
        let (counters, problem) = state.counters();
        if let Some(p) = problem {
            log.warn(&p);
        }
        let exporter = Exporter::start()
            .map_err(|e| log.warn(&format!("cannot start the metrics' writer: {e}")))
            .ok();
        Ok(Daemon {
            policy,
            lister,
            state,
            memory,
            tracking: Tracking::new(),
            looks: Looks::default(),
            published: None,
            actor: Actor::new(choice, log, counters),
            exporter,
            clock: clock::Steady::start(),
            took_before: Duration::ZERO,
        })
    }

    fn log(&self) -> &Log {
        &self.actor.log
    }

    /// Looks at every session, decides, acts; returns when to look again (steady time).
    fn pass(&mut self) -> Result<Timestamp> {
        let started = std::time::Instant::now();
        let reading = self.clock.read();
        if let Some(by) = reading.stepped {
            self.log().warn(&format!(
                "the wall clock stepped by {by:#}: idle, disconnected, max-age and allowance \
                 clocks keep logoffd's own time; logon hours follow the wall clock"
            ));
        }
        let clock_now = reading.now;
        let now = clock_now.at;
        let looks = &self.looks;
        let due = |sessions: &[Session], watched: &HashSet<Uid>| looks.due(sessions, watched, now);
        let (mut sessions, fresh) = act::look(self.lister.as_mut(), &self.policy, Some(&due))?;
        let fresh = |s: &Session| s.uid.is_some_and(|u| fresh.contains(&u));
        for s in sessions.iter_mut().filter(|s| !fresh(s)) {
            self.looks.carry(s);
        }
        self.clock.steady_facts(&mut sessions);
        // Time logoffd did not see (stopped, suspended) is what passes beyond the scan
        // interval, twice over, and the time the pass before took (a user whose sessions
        // make a pass slow gains no allowance by it).
        let gap = self
            .policy
            .scan_interval
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(10))
            .saturating_add(self.took_before);
        let observed = self.memory.observe(&mut sessions, now);
        let accounted = self.memory.account(&self.policy, &sessions, now, gap);
        if (observed || accounted || reading.stepped.is_some())
            && let Err(e) = self.memory.save(&self.state, clock_now.offset)
        {
            self.log().warn(&format!("cannot keep the clocks: {e}"));
        }
        let step = planner::step(
            &self.policy,
            &sessions,
            &self.memory,
            &self.tracking,
            clock_now,
        );
        self.looks.remember(
            &sessions,
            &step.verdicts,
            &step.tracking,
            &self.policy,
            fresh,
            now,
        );
        self.publish(step.published, clock_now);
        let at = act::Situation {
            policy: &self.policy,
            memory: &self.memory,
            now: clock_now,
            clock: &self.clock,
        };
        self.tracking = self.actor.carry_out(
            self.lister.as_mut(),
            &sessions,
            &at,
            step.tracking,
            step.decisions,
        );
        self.took_before = started.elapsed();
        self.account(&sessions, self.took_before, now);
        Ok(step.wake)
    }

    /// Keeps the counters if they moved, and hands the metrics of this pass to their writer.
    fn account(&mut self, sessions: &[Session], took: std::time::Duration, now: Timestamp) {
        let tally = self.actor.tally.get_mut();
        if tally.take_changed()
            && let Err(e) = self.state.keep_counters(tally)
        {
            self.actor
                .log
                .warn(&format!("cannot keep the counters: {e}"));
        }
        let (Some(dir), Some(exporter)) = (&self.policy.metrics_dir, &mut self.exporter) else {
            return;
        };
        let figures = metrics::PassFigures {
            sessions,
            warned: self
                .tracking
                .values()
                .filter(|t| !t.warned.is_empty())
                .count(),
            took,
            at: now,
        };
        let text = metrics::render(&figures, self.actor.tally.get_mut());
        if let Some(problem) = exporter.send(dir, text) {
            self.actor.log.warn(&problem);
        }
    }

    /// Publishes each session's deadline, in wall time (for `logoff --list`).
    fn publish(&mut self, mut sessions: BTreeMap<String, TimeLimit>, now: time::Now) {
        for p in sessions.values_mut() {
            p.put_in_wall_time(now);
        }
        if self.published.as_ref() == Some(&sessions) {
            return;
        }
        let deadlines = Deadlines {
            writer: Writer::me(),
            mode: self.policy.mode.as_str().to_string(),
            sessions,
        };
        if let Err(e) = self.state.publish(&deadlines) {
            self.log()
                .warn(&format!("cannot publish the deadlines: {e}"));
        }
        self.published = Some(deadlines.sessions);
    }

    /// A new policy (SIGHUP): warnings given under the old one stand until the next pass
    /// says otherwise.
    fn set_policy(&mut self, policy: Policy) {
        if let Some(old) = &self.policy.metrics_dir
            && policy.metrics_dir.as_ref() != Some(old)
        {
            metrics::withdraw(old);
        }
        self.tracking = planner::carry_over(std::mem::take(&mut self.tracking), &policy);
        self.policy = policy;
    }

    /// Tells every warned session that logoffd stops and its logoff will not happen.
    fn stop(&mut self) {
        let warned: Vec<_> = self
            .tracking
            .iter()
            .filter(|(_, t)| !t.warned.is_empty())
            .map(|(k, t)| (k.clone(), t.warning_of()))
            .collect();
        if !warned.is_empty()
            && let Ok(sessions) = self.lister.list()
        {
            for (key, of) in warned {
                if let Some(s) = sessions.iter().find(|s| s.key() == key) {
                    self.actor.cancel(
                        self.lister.as_mut(),
                        s,
                        &of,
                        "the time-limit service stopped",
                        Delivery::ToUsers,
                    );
                }
            }
        }
        self.state.withdraw();
        let tally = self.actor.tally.get_mut();
        if tally.take_changed() {
            let _ = self.state.keep_counters(tally);
        }
        if let Some(exporter) = self.exporter.take() {
            exporter.finish(Duration::from_secs(1));
        }
        if let Some(dir) = &self.policy.metrics_dir {
            metrics::withdraw(dir);
        }
    }
}

fn run(args: &DaemonArgs, policy: Policy) -> ExitCode {
    let log = Log::open();
    let state = match StateDir::open(&args.state_dir) {
        Ok(s) => s,
        Err(e) => {
            log.error(&e.to_string());
            return ExitCode::from(DaemonStatus::Failed);
        }
    };
    crate::system::handle::prepare_descriptors();
    let (tx, rx) = events::channel_pair();
    if let Err(e) = events::watch_signals(tx.clone()) {
        log.error(&format!("cannot handle signals: {e}"));
        return ExitCode::from(DaemonStatus::Failed);
    }
    let described = describe(&policy);
    let mut daemon = match Daemon::new(policy, args.backend, state, log) {
        Ok(d) => d,
        Err(e) => {
            Log::open().error(&e.to_string());
            return ExitCode::from(DaemonStatus::Failed);
        }
    };
    let flavor = daemon.lister.about().0;
    if flavor == Flavor::Logind
        && let Err(e) = events::watch_logind(tx.clone())
    {
        daemon
            .log()
            .warn(&format!("cannot follow logind's signals: {e}"));
    }
    daemon.log().info(&format!(
        "started: {described}; backend {}",
        flavor.as_str()
    ));
    let mut ready = false;
    loop {
        let next = match daemon.pass() {
            Ok(t) => t,
            Err(e) => {
                daemon
                    .log()
                    .error(&format!("cannot look at the sessions: {e}"));
                time::add(daemon.clock.peek(), daemon.policy.scan_interval.min(RETRY))
            }
        };
        if !ready {
            notify(&format!("READY=1\nSTATUS={described}"));
            ready = true;
        }
        match rx.recv_timeout(time::between(daemon.clock.peek(), next)) {
            Ok(Event::Reload) => reload(&mut daemon, &args.policy),
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => {
                notify("STOPPING=1");
                daemon.stop();
                daemon.log().info("stopped");
                return ExitCode::from(DaemonStatus::Stopped);
            }
            Ok(Event::WatchLost) => daemon.log().warn(
                "lost logind's signals: new and closed sessions are seen at the scan interval",
            ),
            Ok(Event::Sessions) | Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// SIGHUP: the policy again; a broken one is reported and the one in force stays.
fn reload(daemon: &mut Daemon, path: &std::path::Path) {
    notify("RELOADING=1");
    let shown = crate::output::clean(&path.display().to_string()).into_owned();
    match policy::load(path) {
        Ok(p) => {
            let described = describe(&p);
            daemon.set_policy(p);
            daemon.log().info(&format!("reloaded {shown}: {described}"));
            notify(&format!("READY=1\nSTATUS={described}"));
        }
        Err(e) => {
            daemon.log().error(&format!(
                "SIGHUP: {shown} is not valid ({e}); the policy in force stays"
            ));
            notify("READY=1");
        }
    }
}

fn describe(p: &Policy) -> String {
    format!(
        "mode {}, {} rule{}",
        p.mode.as_str(),
        p.rules.len(),
        if p.rules.len() == 1 { "" } else { "s" }
    )
}
