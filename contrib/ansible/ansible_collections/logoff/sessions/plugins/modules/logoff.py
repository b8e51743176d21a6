#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logoff developers
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: logoff
short_description: Log off, disconnect or message login sessions, through logoff
description:
  - Runs the logoff installed on the host on the sessions named or those the filters take
    (by ID, user, state, idle time, origin). Every process of a session is ended and
    verified gone, as the command does; or only its connection ends (C(action=disconnect));
    or a message is written (C(action=message)).
  - In check mode it runs C(logoff --dry-run), which touches nothing and says what would be
    done.
  - The task's own session (the ssh login Ansible runs in) is left out of what filters take,
    as the command leaves out the session it runs in.
version_added: "0.2.0"
author:
  - logoff developers (@logoff)
extends_documentation_fragment:
  - logoff.sessions.filters
options:
  sessions:
    description: Session IDs or names to act on; with filters, they must pass them too.
    type: list
    elements: str
    default: []
  all:
    description: Every session (that passes the filters), but the task's own.
    type: bool
    default: false
  action:
    description:
      - What to do to each session. C(logoff) ends it; C(disconnect) ends its connection only
        (its programs keep running); C(message) writes O(text) and ends nothing.
    type: str
    default: logoff
    choices: [logoff, disconnect, message]
  text:
    description: A message written to the sessions' terminals and displays first (logoff's
      C(--message)).
    type: str
  grace:
    description: How long to wait after the message before acting (C(5m)).
    type: str
  timeout:
    description: How long programs get between SIGTERM and SIGKILL (C(10s)).
    type: str
  console:
    description: Allow another user's console session (protected otherwise).
    type: bool
    default: false
notes:
  - Needs logoff on the host; other users' sessions need root (C(become)).
  - The result is C(changed) only where a session was logged off or disconnected; in check
    mode, where one would be (a message, O(action=message), changes nothing).
  - A failure is logoff's, in its words, with its exit status in RV(rc).
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Lock a user out everywhere, now (after disabling the account)
  logoff.sessions.logoff:
    user: [mallory]
    all: true
    timeout: 5s
  become: true

- name: Abandoned sessions idle for a day
  logoff.sessions.logoff:
    state: [disconnected]
    idle_for: 1d
    all: true
  become: true

- name: Warn everyone before maintenance, then log them off
  logoff.sessions.logoff:
    all: true
    text: "Maintenance at 18:00: please save your work now."
    grace: 10m
  become: true
"""

RETURN = r"""
sessions:
  description: One result per session acted on (or that would be, in check mode), as
    C(logoff --json) gives it.
  returned: always
  type: list
  elements: dict
  sample:
    - host: web1
      id: "12"
      user: bob
      action: logoff
      logged_off: true
      dry_run: false
      error: null
rc:
  description: logoff's exit status.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.logoff.sessions.plugins.module_utils.logoff import (
    FILTER_SPEC,
    fail,
    filter_args,
    option,
    run,
)


def arguments(params, check_mode):
    """logoff's command line for a task."""
    args = filter_args(params)
    if params["all"]:
        args.append("--all")
    if params["action"] == "disconnect":
        args.append("--disconnect")
    elif params["action"] == "message":
        args.append("--warn-only")
    if params["text"]:
        args.append(option("message", params["text"]))
    for key in ("grace", "timeout"):
        if params[key]:
            args.append(option(key, params[key]))
    if params["console"]:
        args.append("--console")
    if check_mode:
        args.append("--dry-run")
    return args


def main():
    spec = dict(FILTER_SPEC)
    spec.update(
        all=dict(type="bool", default=False),
        action=dict(type="str", default="logoff", choices=["logoff", "disconnect", "message"]),
        text=dict(type="str"),
        grace=dict(type="str"),
        timeout=dict(type="str"),
        console=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
        required_if=[("action", "message", ["text"])],
    )
    p = module.params
    given = p["sessions"] or p["all"] or p["user"] or p["state"] or p["idle_for"] \
        or p["from_host"] or p["remote"] is not None
    if not given:
        # Without them logoff would log off the session it runs in: Ansible's own.
        module.fail_json(msg="name the sessions, or give a filter or all: true", rc=2)
    rc, data, err = run(module, arguments(p, module.check_mode))
    results = data if isinstance(data, list) else []
    if rc != 0 or data is None:
        fail(module, rc, err, sessions=results)
    if module.check_mode:
        # What the dry run says would be ended (a message ends nothing).
        changed = p["action"] != "message" and any(
            r.get("dry_run") and not r.get("error") for r in results)
    else:
        changed = any(r.get("logged_off") or r.get("disconnected") for r in results)
    module.exit_json(changed=changed, sessions=results, rc=rc)


if __name__ == "__main__":
    main()
