/*
 * The Sessions page: logoff's session list and actions, in Cockpit.
 *
 * Nothing here decides anything about a session. The table is what `logoff --list --json`
 * prints (README.md, "Session list"), and every action is one `logoff` command line run
 * through cockpit.spawn, as root where Cockpit has administrative access (superuser "try")
 * and as the logged-in user elsewhere. logoff resolves the sessions, checks privilege and
 * console protection, warns, logs off, verifies, writes the audit record, and words the
 * errors this page shows. What the page adds: a user without administrative access gets no
 * enabled action on other users' sessions (logoff would refuse them anyway).
 *
 * Text from logoff (user names, terminals, hosts: chosen by users) reaches the DOM through
 * textContent only, with control and bidi characters escaped as logoff escapes them.
 */
"use strict";

const LOGOFF = "logoff";
const SPAWN_OPTIONS = { superuser: "try", err: "message" };
// With logind, its signals say when a session comes or goes; the poll is for idle times,
// which change by the minute. Without logind nothing says so: poll more often.
const SLOW_POLL_MS = 30000;
const POLL_MS = 5000;
// README.md, "Exit status".
const EXIT_STATUS = {
    1: "some process of a session could not be ended",
    2: "invalid parameters; nothing was touched",
    3: "no such session; nothing was touched",
    4: "access denied; nothing was touched",
    5: "the session backend or the system failed",
    6: "a remote host could not be reached or failed",
    7: "the session has no connection to end; nothing was touched",
    130: "cancelled; nobody was logged off",
};

const state = {
    rows: [],
    me: null, // { id, name } of the Cockpit user
    admin: false, // Cockpit has administrative access (logoff then runs as root)
    sortKey: "id",
    sortDir: 1,
    selected: new Set(), // session IDs
    busy: new Map(), // session ID -> what is being done to it
    listing: false,
    listAgain: false,
    live: false, // logind's signals refresh the list
    pollTimer: null,
    loaded: false,
};

/* ---- Text ---- */

// As logoff's `clean` (src/output/mod.rs) shows text on a terminal: a C0 control as ^X, DEL
// as ^?, a C1 or bidi control as \u{XXXX}. A user's name cannot reorder or hide the page's
// text around it.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

function clean(text) {
    if (text === null || text === undefined)
        return "";
    return String(text).replace(UNSAFE, c => {
        const code = c.codePointAt(0);
        if (code < 0x20)
            return "^" + String.fromCharCode(0x40 + code);
        if (code === 0x7f)
            return "^?";
        return "\\u{" + code.toString(16).padStart(4, "0") + "}";
    });
}

function dash(text) {
    return text === null || text === undefined || text === "" ? "-" : clean(text);
}

// Idle time as logoff --list (quser) prints it: `.` under a minute, minutes, H:MM, D+HH:MM.
function formatIdle(seconds) {
    if (seconds === null || seconds === undefined)
        return "-";
    const minutes = Math.floor(seconds / 60);
    const two = n => String(n).padStart(2, "0");
    if (minutes === 0)
        return ".";
    if (minutes < 60)
        return String(minutes);
    if (minutes < 24 * 60)
        return Math.floor(minutes / 60) + ":" + two(minutes % 60);
    const rest = minutes % (24 * 60);
    return Math.floor(minutes / (24 * 60)) + "+" + two(Math.floor(rest / 60)) + ":" + two(rest % 60);
}

// An RFC 3339 time as a Date (logoff prints up to nanoseconds; Date takes milliseconds).
function parseTime(rfc3339) {
    const t = rfc3339 ? new Date(String(rfc3339).replace(/(\.[0-9]{3})[0-9]+/, "$1")) : null;
    return t && !isNaN(t.getTime()) ? t : null;
}

// A time to the minute, in the browser's time zone; `-` unknown.
function formatTime(rfc3339) {
    const t = parseTime(rfc3339);
    if (!t)
        return "-";
    const two = n => String(n).padStart(2, "0");
    return t.getFullYear() + "-" + two(t.getMonth() + 1) + "-" + two(t.getDate()) + " " +
        two(t.getHours()) + ":" + two(t.getMinutes());
}

function isVirtualTerminal(tty) {
    return /^tty[0-9]+$/.test(tty || "");
}

// FROM as logoff --list shows it.
function from(row) {
    if (row.remote_host)
        return clean(row.remote_host);
    if (row.remote)
        return "remote";
    if (row.seat || row.vtnr || row.tty === "console" || isVirtualTerminal(row.tty))
        return "local";
    return "-";
}

function timeLimit(row) {
    const l = row.time_limit;
    return l ? formatTime(l.logoff_at) + " (" + clean(l.reason) + ")" : "-";
}

// "bob on pts/1 (session 5)", for dialogs and results.
function describe(row) {
    const on = row.name ? " on " + clean(row.name) : "";
    return dash(row.user) + on + " (session " + clean(row.id) + ")";
}

/* ---- DOM ---- */

// The markup uses PatternFly 4's class names (Cockpit 239 to 29x: Debian 11 and 12).
// PatternFly 5 and 6 (later Cockpits) spell the same blocks pf-v5-c-… and pf-v6-c-…; every
// element also gets those, so whichever PatternFly the shell's stylesheet has styles it.
function pfAliases(classes) {
    return classes.split(/\s+/).filter(Boolean)
            .flatMap(c => /^pf-[clu]-/.test(c) ? [c, c.replace(/^pf-/, "pf-v5-"), c.replace(/^pf-/, "pf-v6-")] : [c])
            .join(" ");
}

function alias(root) {
    root.querySelectorAll("[class*='pf-']").forEach(e => {
        e.className = pfAliases(e.className);
    });
}

// An element; `props.text` becomes its textContent, other props attributes.
function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
        if (value === null || value === undefined || value === false)
            continue;
        if (key === "text")
            e.textContent = value;
        else if (key === "class")
            e.className = pfAliases(value);
        else if (key.startsWith("on"))
            e.addEventListener(key.substring(2), value);
        else
            e.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
        if (child !== null && child !== undefined)
            e.append(child);
    }
    return e;
}

const $ = id => document.getElementById(id);

/* ---- Columns ---- */

function idKey(id) {
    return /^[0-9]+$/.test(id) ? [0, Number(id), ""] : [1, 0, id];
}

function compare(a, b) {
    if (a === b)
        return 0;
    if (a === null || a === undefined)
        return 1; // unknown last
    if (b === null || b === undefined)
        return -1;
    if (Array.isArray(a)) {
        for (let i = 0; i < a.length; i++) {
            const c = compare(a[i], b[i]);
            if (c !== 0)
                return c;
        }
        return 0;
    }
    return a < b ? -1 : 1; // numbers, strings, Dates
}

const COLUMNS = [
    { key: "user", title: "User", cell: r => dash(r.user), sort: r => r.user },
    { key: "id", title: "ID", cell: r => clean(r.id), sort: r => idKey(r.id) },
    {
        key: "name",
        title: "Session name", // as in logoff --list and quser: the terminal, else the X display
        cell: r => dash(r.name) + (r.current ? " (this Cockpit login)" : ""),
        sort: r => r.name,
    },
    { key: "state", title: "State", cell: r => state.busy.get(r.id) || dash(r.state), sort: r => r.state },
    { key: "idle", title: "Idle", cell: r => formatIdle(r.idle_seconds), sort: r => r.idle_seconds },
    { key: "logon", title: "Logon", cell: r => formatTime(r.logon_time), sort: r => parseTime(r.logon_time) },
    { key: "from", title: "From", cell: from, sort: r => from(r) },
    {
        key: "limit",
        title: "Log off at",
        cell: timeLimit,
        sort: r => r.time_limit ? parseTime(r.time_limit.logoff_at) : null,
        onlyWithLimits: true,
    },
];

function columns() {
    const limits = state.rows.some(r => r.time_limit);
    return COLUMNS.filter(c => !c.onlyWithLimits || limits);
}

/* ---- Who may act ---- */

// Another user's session needs administrative access; your own you may always log off
// (the session's login uid is yours), as with the command.
function mayAct(row) {
    return state.admin || (state.me !== null && row.uid !== null && row.uid === state.me.id);
}

function visibleRows() {
    const user = $("filter-user").value.trim().toLowerCase();
    const wanted = $("filter-state").value;
    const col = COLUMNS.find(c => c.key === state.sortKey) || COLUMNS[1];
    return state.rows
            .filter(r => !user || String(r.user || "").toLowerCase()
                    .includes(user))
            .filter(r => !wanted || r.state === wanted)
            .sort((a, b) => state.sortDir * compare(col.sort(a), col.sort(b)) ||
                compare(idKey(a.id), idKey(b.id)));
}

/* ---- Rendering ---- */

function renderHead(cols, rows) {
    const head = $("head");
    head.replaceChildren();
    const selectable = rows.filter(mayAct);
    const all = el("input", {
        type: "checkbox",
        id: "select-all",
        "aria-label": "Select all sessions shown",
        "data-focus": "select-all",
        disabled: selectable.length === 0,
        onchange: ev => {
            for (const r of selectable) {
                if (ev.target.checked)
                    state.selected.add(r.id);
                else
                    state.selected.delete(r.id);
            }
            render();
        },
    });
    all.checked = selectable.length > 0 && selectable.every(r => state.selected.has(r.id));
    head.append(el("td", { class: "pf-c-table__check" }, all));
    for (const c of cols) {
        const sorted = state.sortKey === c.key;
        const direction = state.sortDir > 0 ? "ascending" : "descending";
        head.append(el("th", {
            class: "pf-c-table__sort" + (sorted ? " pf-m-selected" : ""),
            scope: "col",
            "aria-sort": sorted ? direction : "none",
        }, el("button", {
            class: "pf-c-table__button",
            type: "button",
            "data-focus": "sort-" + c.key,
            "data-sort": c.key,
            onclick: () => {
                state.sortDir = sorted ? -state.sortDir : 1;
                state.sortKey = c.key;
                render();
            },
        }, el("span", { class: "pf-c-table__text", text: c.title }),
        el("span", { class: "pf-c-table__sort-indicator", "aria-hidden": "true", text: sorted ? (state.sortDir > 0 ? " ▲" : " ▼") : " ↕" }))));
    }
    head.append(el("td", { class: "ct-actions-head" }, el("span", { class: "ct-sr-only", text: "Actions" })));
}

function actionButton(label, action, row, allowed, spoken) {
    return el("button", {
        class: "pf-c-button pf-m-link pf-m-inline",
        type: "button",
        "data-focus": action + "-" + row.id,
        "data-action": action,
        disabled: !allowed || state.busy.has(row.id),
        title: allowed ? null : "Other users' sessions need administrative access",
        "aria-label": (spoken || label) + " " + describe(row),
        onclick: ev => openDialog(action, [row], ev.currentTarget),
    }, label);
}

function renderRow(row, cols) {
    const allowed = mayAct(row);
    const check = el("input", {
        type: "checkbox",
        "aria-label": "Select " + describe(row),
        "data-focus": "select-" + row.id,
        disabled: !allowed,
        onchange: ev => {
            if (ev.target.checked)
                state.selected.add(row.id);
            else
                state.selected.delete(row.id);
            render();
        },
    });
    check.checked = state.selected.has(row.id);
    const tr = el("tr", {
        "data-id": row.id,
        "data-user": row.user,
        class: row.current ? "ct-current" : null,
    }, el("td", { class: "pf-c-table__check" }, check));
    for (const c of cols)
        tr.append(el("td", { "data-label": c.title, "data-column": c.key, text: c.cell(row) }));
    tr.append(el("td", { class: "ct-actions", "data-label": "Actions" },
                 actionButton("Log off", "logoff", row, allowed),
                 actionButton("Disconnect", "disconnect", row, allowed),
                 actionButton("Message", "message", row, allowed, "Send a message to")));
    return tr;
}

function renderStateFilter() {
    const select = $("filter-state");
    const states = [...new Set(state.rows.map(r => r.state).filter(Boolean))].sort();
    if (select.value && !states.includes(select.value))
        states.push(select.value);
    const current = [...select.options].slice(1).map(o => o.value);
    if (current.join("\n") === states.join("\n"))
        return;
    const keep = select.value;
    select.replaceChildren(el("option", { value: "", text: "All states" }),
                           ...states.map(s => el("option", { value: s, text: clean(s) })));
    select.value = keep;
}

// Redraws everything from `state`, keeping the keyboard focus where it was.
function render() {
    const focused = document.activeElement && document.activeElement.getAttribute("data-focus");
    const rows = visibleRows();
    // What is selected stays visible: no action reaches a session the filter hides.
    const shown = new Set(rows.filter(mayAct).map(r => r.id));
    for (const id of [...state.selected]) {
        if (!shown.has(id))
            state.selected.delete(id);
    }
    const cols = columns();
    renderStateFilter();
    renderHead(cols, rows);
    $("rows").replaceChildren(...rows.map(r => renderRow(r, cols)));
    $("access-note").hidden = state.admin || !state.loaded;
    const n = state.selected.size;
    for (const id of ["selected-logoff", "selected-disconnect", "selected-message"])
        $(id).disabled = n === 0;
    $("count").textContent = rows.length + " of " + state.rows.length + " sessions" +
        (n ? ", " + n + " selected" : "");
    $("empty").hidden = rows.length > 0;
    if (state.loaded)
        $("empty-text").textContent = state.rows.length ? "No session matches the filters." : "No sessions.";
    if (focused) {
        const again = document.querySelector("[data-focus='" + CSS.escape(focused) + "']");
        if (again && !again.disabled)
            again.focus();
    }
}

/* ---- Results ---- */

// Text of several lines, each cleaned (a ^J that logoff printed stays a ^J).
function cleanLines(text) {
    return text.split("\n").map(clean).join("\n");
}

const MAX_ALERTS = 4;

// An inline alert above the table: a title, lines, and what logoff printed — open, or
// folded when the lines already say what matters.
function notify(variant, title, { lines, printed, folded, closable = true } = {}) {
    const close = !closable ? null : el("button", {
        class: "pf-c-button pf-m-plain",
        type: "button",
        "aria-label": "Close: " + title,
        text: "×",
    });
    const body = el("div", { class: "pf-c-alert__description" });
    if (lines && lines.length)
        body.append(el("ul", {}, ...lines.map(l => el("li", { text: l }))));
    if (printed) {
        const pre = el("pre", { class: "ct-stderr", text: cleanLines(printed) });
        body.append(folded ? el("details", {}, el("summary", { text: "Everything logoff printed" }), pre) : pre);
    }
    const icon = { success: "✓", danger: "✕", warning: "!", info: "i" }[variant];
    const item = el("li", { class: "pf-c-alert-group__item", "data-variant": variant },
                    el("div", { class: "pf-c-alert pf-m-inline pf-m-" + variant, role: variant === "danger" ? "alert" : "status" },
                       el("div", { class: "pf-c-alert__icon ct-alert-icon", "aria-hidden": "true", text: icon }),
                       el("p", { class: "pf-c-alert__title", text: title }),
                       close ? el("div", { class: "pf-c-alert__action" }, close) : null,
                       body));
    if (close)
        close.addEventListener("click", () => item.remove());
    const alerts = $("alerts");
    alerts.prepend(item);
    // The oldest results go; a running logoff's alert (info) stays while it runs.
    const done = [...alerts.children].filter(a => a.getAttribute("data-variant") !== "info");
    done.slice(MAX_ALERTS).forEach(a => a.remove());
    return item;
}

// The per-session lines of a `--json` report (README, "Session list": one object per target).
function outcomeLines(action, stdout) {
    let report;
    try {
        report = JSON.parse(stdout);
    } catch (e) {
        return null;
    }
    if (!Array.isArray(report))
        return null;
    return report.map(o => {
        const who = o.id === null
            ? "host " + clean(o.host)
            : dash(o.user) + (o.name ? " on " + clean(o.name) : "") + " (session " + clean(o.id) + ")";
        if (o.error)
            return who + ": " + clean(o.error.message);
        const killed = o.killed ? " (SIGKILL for " + o.killed + (o.killed === 1 ? " process)" : " processes)") : "";
        return who + ": " + action.outcome + killed;
    });
}

// Shows what logoff said: the per-session report of `--json`, else its error lines
// ("logoff: ..."), and all it printed on standard error (after the usage block that comes
// with invalid parameters, the line that says which); its exit status in the title.
function report(action, targets, outcome) {
    const stderr = (outcome.stderr || "").trim();
    const errors = stderr.split("\n").filter(l => l.startsWith("logoff: ")).map(clean);
    const sessions = outcomeLines(action, outcome.stdout || "") || [];
    const lines = sessions.length ? sessions : errors;
    const folded = lines.length > 0;
    if (outcome.problem) {
        const why = outcome.problem === "not-found"
            ? "it is not installed (no logoff in PATH)"
            : cockpit.message(outcome.problem);
        return notify("danger", "Cannot run logoff: " + why, { lines, printed: stderr, folded });
    }
    const status = outcome.status;
    const what = action.done + " " + targets.map(describe).join(", ");
    if (status === 0 && !stderr)
        return notify("success", what, { lines });
    let title;
    if (status === 0)
        title = what;
    else if (status === null)
        title = action.title + ": logoff was killed by signal " + outcome.signal;
    else
        title = action.title + ": logoff exited with status " + status +
            (EXIT_STATUS[status] ? " (" + EXIT_STATUS[status] + ")" : "");
    return notify(status === 0 ? "warning" : "danger", title, { lines, printed: stderr, folded });
}

/* ---- Running logoff ---- */

// Runs one logoff command line: the process (to cancel it) and what it said, once done.
function spawn(args) {
    const proc = cockpit.spawn(args, SPAWN_OPTIONS);
    const done = new Promise(resolve => {
        proc.then((stdout, stderr) => resolve({ status: 0, stdout, stderr }))
                .catch((ex, stdout) => resolve({
                    status: ex.exit_status,
                    signal: ex.exit_signal,
                    problem: ex.problem,
                    stdout,
                    stderr: ex.problem ? "" : ex.message,
                }));
    });
    return { proc, done };
}

const LISTING = { title: "Listing the sessions", done: "Listed the sessions", outcome: "listed" };

// Lists the sessions again (one `logoff --list --json` at a time; a request meanwhile runs
// once more after it). A failure is shown once, until a list succeeds.
async function refresh() {
    if (state.listing) {
        state.listAgain = true;
        return;
    }
    state.listing = true;
    try {
        do {
            state.listAgain = false;
            const out = await spawn([LOGOFF, "--list", "--json"]).done;
            let rows = null;
            let garbled = null;
            if (out.status === 0 && !out.problem) {
                try {
                    rows = JSON.parse(out.stdout);
                } catch (e) {
                    garbled = e;
                }
            }
            const shown = $("list-error");
            if (Array.isArray(rows)) {
                state.rows = rows;
                state.loaded = true;
                if (shown)
                    shown.remove();
            } else if (!shown) {
                const failed = out.status === 0 && !out.problem
                    ? notify("danger", "Listing the sessions: logoff --list --json printed no list" +
                             (garbled ? " (" + garbled + ")" : ""))
                    : report(LISTING, [], out);
                failed.id = "list-error";
            }
            render();
        } while (state.listAgain);
    } finally {
        state.listing = false;
    }
}

let refreshTimer = null;
function refreshSoon() {
    // logind's signals come in bursts (a login opens a session and a user manager).
    if (refreshTimer === null) {
        refreshTimer = window.setTimeout(() => {
            refreshTimer = null;
            refresh();
        }, 250);
    }
}

// A new session is announced before its login has finished (sshd sets the terminal just
// after): list it now, and again a moment later.
function sessionNew() {
    refreshSoon();
    window.setTimeout(refreshSoon, 3000);
}

function schedulePoll() {
    window.clearTimeout(state.pollTimer);
    state.pollTimer = window.setTimeout(() => {
        if (!cockpit.hidden)
            refresh();
        schedulePoll();
    }, state.live ? SLOW_POLL_MS : POLL_MS);
}

// Where logind runs, its SessionNew and SessionRemoved signals refresh the list.
function watchLogind() {
    const bus = cockpit.dbus("org.freedesktop.login1", { bus: "system" });
    const manager = { interface: "org.freedesktop.login1.Manager", path: "/org/freedesktop/login1" };
    bus.call(manager.path, "org.freedesktop.DBus.Peer", "Ping", [])
            .then(() => {
                bus.subscribe({ ...manager, member: "SessionNew" }, sessionNew);
                bus.subscribe({ ...manager, member: "SessionRemoved" }, refreshSoon);
                state.live = true;
                document.body.setAttribute("data-refresh", "logind");
                schedulePoll();
            })
            .catch(() => {
                bus.close();
                state.live = false;
                document.body.setAttribute("data-refresh", "poll");
                schedulePoll();
            });
}

/* ---- Actions ---- */

const ACTIONS = {
    logoff: {
        title: "Log off",
        verb: "Log off",
        done: "Logged off",
        outcome: "logged off",
        busy: "logging off…",
        danger: true,
        message: "Message to the users (optional)",
        grace: true,
        describe: "Every process of these sessions ends; programs get SIGHUP and SIGTERM first, " +
            "so they can save their work.",
        args: (message, grace) => [LOGOFF, "--json"]
                .concat(message ? ["--message=" + message] : [])
                .concat(grace ? ["--grace=" + grace] : []),
    },
    disconnect: {
        title: "Disconnect",
        verb: "Disconnect",
        done: "Disconnected",
        outcome: "disconnected",
        busy: "disconnecting…",
        describe: "The session's connection ends (its ssh connection, its RDP client); what " +
            "runs detached from it (an RDP desktop, tmux, screen) keeps running, and the user " +
            "can reconnect to it.",
        args: () => [LOGOFF, "--disconnect", "--json"],
    },
    message: {
        title: "Send message",
        verb: "Send",
        done: "Sent the message to",
        outcome: "message sent",
        busy: null,
        message: "Message",
        messageRequired: true,
        describe: "The message is written to the sessions' terminals (or shown on their " +
            "displays). Nobody is logged off.",
        args: message => [LOGOFF, "--warn-only", "--message=" + message],
    },
};

let dialogOpener = null; // the data-focus key of what opened the dialog
let dialogAction = null;
let dialogTargets = [];

function selectedRows() {
    return state.rows.filter(r => state.selected.has(r.id) && mayAct(r));
}

function openDialog(name, targets, opener) {
    if (targets.length === 0)
        return;
    const action = ACTIONS[name];
    dialogAction = name;
    dialogTargets = targets;
    dialogOpener = opener && opener.getAttribute("data-focus");
    const n = targets.length;
    $("dialog-title").textContent = action.title + ": " + n + (n === 1 ? " session" : " sessions");
    $("dialog-description").textContent = action.describe;
    $("dialog-targets").replaceChildren(...targets.map(r => el("li", {
        text: describe(r) + (r.current ? ": this Cockpit session, which ends with it" : ""),
    })));
    $("dialog-message-group").hidden = !action.message;
    $("dialog-message-label").textContent = action.message || "";
    $("dialog-message").value = "";
    $("dialog-message").required = !!action.messageRequired;
    $("dialog-grace-group").hidden = !action.grace;
    $("dialog-grace").value = "";
    const ok = $("dialog-ok");
    ok.textContent = action.verb;
    ok.className = pfAliases("pf-c-button " + (action.danger ? "pf-m-danger" : "pf-m-primary"));
    $("dialog").showModal();
    (action.message ? $("dialog-message") : ok).focus();
}

function closeDialog() {
    const dialog = $("dialog");
    if (dialog.open)
        dialog.close();
}

function onDialogClosed() {
    // Back to what opened the dialog (the table may have been drawn anew meanwhile), or to
    // the filter when that is gone or disabled (its session is being acted on).
    const opener = dialogOpener && document.querySelector("[data-focus='" + CSS.escape(dialogOpener) + "']");
    dialogOpener = null;
    (opener && !opener.disabled ? opener : $("filter-user")).focus();
}

async function submitDialog(ev) {
    ev.preventDefault();
    const action = ACTIONS[dialogAction];
    const message = $("dialog-message").value;
    if (action.messageRequired && !message.trim()) {
        $("dialog-message").focus();
        return;
    }
    const grace = action.grace ? $("dialog-grace").value.trim() : "";
    const targets = dialogTargets;
    closeDialog();
    await run(action, targets, action.args(message.trim() ? message : "", grace), grace);
}

async function run(action, targets, args, grace) {
    const ids = targets.map(r => r.id);
    for (const id of ids) {
        if (action.busy)
            state.busy.set(id, action.busy);
        state.selected.delete(id);
    }
    render();
    const { proc, done } = spawn(args.concat(["--"], ids));
    let pending = null;
    let cancelled = false;
    if (grace) {
        // The grace period runs in this page's logoff: closing its channel sends it SIGTERM,
        // which logoff takes as Ctrl-C (the users are told, nobody is logged off, the audit
        // record says cancelled). Leaving the page closes the channel too.
        pending = notify("info", action.title + " in " + clean(grace) + ": " + targets.map(describe).join(", "),
                         { lines: ["The users have been warned. Leaving this page cancels the logoff."], closable: false });
        pending.querySelector("[class*='pf-c-alert__description']").append(el("button", {
            class: "pf-c-button pf-m-secondary",
            type: "button",
            text: "Cancel the logoff",
            onclick: () => {
                cancelled = true;
                proc.close("terminated");
            },
        }));
    }
    const outcome = await done;
    if (pending)
        pending.remove();
    for (const id of ids)
        state.busy.delete(id);
    if (cancelled && outcome.problem === "terminated") {
        notify("warning", "Cancelled: " + action.title + " " + targets.map(describe).join(", "),
               { lines: ["logoff was stopped during the grace period, as Ctrl-C stops it: nobody is logged off and the users are told."] });
    } else {
        report(action, targets, outcome);
    }
    await refresh();
}

/* ---- Start ---- */

function start() {
    alias(document);
    $("filter-user").addEventListener("input", render);
    $("filter-state").addEventListener("change", render);
    $("refresh").addEventListener("click", refresh);
    $("selected-logoff").addEventListener("click", ev => openDialog("logoff", selectedRows(), ev.currentTarget));
    $("selected-disconnect").addEventListener("click", ev => openDialog("disconnect", selectedRows(), ev.currentTarget));
    $("selected-message").addEventListener("click", ev => openDialog("message", selectedRows(), ev.currentTarget));
    $("dialog-form").addEventListener("submit", submitDialog);
    $("dialog-cancel").addEventListener("click", closeDialog);
    $("dialog-close").addEventListener("click", closeDialog);
    // Escape closes a modal <dialog> by itself ("cancel"); every way out returns the focus.
    $("dialog").addEventListener("close", onDialogClosed);

    const permission = cockpit.permission({ admin: true });
    const onPermission = () => {
        // Unknown (null) until Cockpit has asked: no access meanwhile.
        state.admin = permission.allowed === true;
        const known = permission.allowed === true || permission.allowed === false;
        document.body.setAttribute("data-admin", known ? (state.admin ? "yes" : "no") : "pending");
        render();
    };
    permission.addEventListener("changed", onPermission);
    onPermission();
    cockpit.addEventListener("visibilitychange", () => {
        if (!cockpit.hidden)
            refresh();
    });
    cockpit.user().then(user => {
        state.me = { id: user.id, name: user.name };
        render();
    });
    render();
    refresh().then(watchLogind);
}

document.addEventListener("DOMContentLoaded", start);
