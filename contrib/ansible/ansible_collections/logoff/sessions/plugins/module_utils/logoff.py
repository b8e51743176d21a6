# -*- coding: utf-8 -*-
# Copyright: logoff developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Running the logoff installed on a host, for the collection's modules.

The modules translate their options into logoff's own command line and read its JSON: every
decision (which sessions a filter takes, what is a session's state or idle time, who may log
off whom) is logoff's, made on the host. Nothing here is written twice.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# The filters both modules take, as logoff's command line spells them.
FILTER_SPEC = dict(
    sessions=dict(type="list", elements="str", default=[]),
    user=dict(type="list", elements="str", default=[]),
    state=dict(
        type="list",
        elements="str",
        default=[],
        choices=["active", "online", "closing", "idle", "disconnected"],
    ),
    idle_for=dict(type="str"),
    from_host=dict(type="str", aliases=["from"]),
    remote=dict(type="bool"),
    backend=dict(type="str", default="auto", choices=["auto", "logind", "procfs"]),
    executable=dict(type="path", default="logoff"),
)


def option(name, value):
    """`--name=value`: an option and its value as one argument, so that a value beginning
    with `-` or `/` (a message "/V", a user "-x") is never read as an option or as one of
    logoff's `/SWITCH` spellings."""
    return "--%s=%s" % (name, value)


def filter_args(params):
    """logoff's options for the filters in `params` (the session arguments go last: `run`)."""
    args = []
    for user in params["user"]:
        args.append(option("user", user))
    for state in params["state"]:
        args.append(option("state", state))
    if params["idle_for"]:
        args.append(option("idle-for", params["idle_for"]))
    if params["from_host"]:
        args.append(option("from", params["from_host"]))
    if params["remote"] is True:
        args.append("--remote")
    elif params["remote"] is False:
        args.append("--local")
    args.append(option("backend", params["backend"]))
    return args


def run(module, args):
    """Runs logoff with `args`, `--json` and the task's session arguments after `--` (a
    session named `/SERVER:x` or `--all` is a session's name, never an option); its exit
    status, JSON and words on stderr.

    A failure is reported with logoff's own words and exit status.
    """
    executable = module.get_bin_path(module.params["executable"], required=True)
    sessions = list(module.params["sessions"])
    rc, out, err = module.run_command([executable] + args + ["--json", "--"] + sessions)
    try:
        data = json.loads(out) if out.strip() else []
    except ValueError:
        data = None
    return rc, data, err


def fail(module, rc, err, **extra):
    """Fails the task with what logoff said (its `logoff: ` prefix off) and its status."""
    lines = [line[len("logoff: "):] if line.startswith("logoff: ") else line
             for line in err.strip().splitlines()]
    module.fail_json(msg="; ".join(lines) or "logoff exited with status %d" % rc,
                     rc=rc, stderr=err, **extra)
