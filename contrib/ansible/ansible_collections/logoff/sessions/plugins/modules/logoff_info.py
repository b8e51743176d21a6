#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logoff developers
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: logoff_info
short_description: List the login sessions of a host, as C(logoff --list --json) does
description:
  - Runs the logoff installed on the host (C(logoff --list --json)) and returns its sessions,
    with the command's own filters.
  - The facts are logoff's, read on the host from logind or the kernel; what is a session's
    state, idle time or connection is decided there, as for the command.
version_added: "0.2.0"
author:
  - logoff developers (@logoff)
extends_documentation_fragment:
  - logoff.sessions.filters
options:
  sessions:
    description: Session IDs or names (C(pts/3), C(:10)) to list; none lists every session.
    type: list
    elements: str
    default: []
notes:
  - Needs logoff on the host (the C(logoff) package; the C(logoffd) role installs it).
  - Other users' sessions' details need root (C(become)).
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Who is on, and which sessions are abandoned
  logoff.sessions.logoff_info:
  register: on

- name: The disconnected sessions of bob
  logoff.sessions.logoff_info:
    user: [bob]
    state: [disconnected]
  become: true
"""

RETURN = r"""
sessions:
  description: The sessions, as C(logoff --list --json) gives them (its keys are stable).
  returned: always
  type: list
  elements: dict
  sample:
    - id: "12"
      user: bob
      state: active
      idle_seconds: 125
      connected_by: ssh
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.logoff.sessions.plugins.module_utils.logoff import (
    FILTER_SPEC,
    fail,
    filter_args,
    run,
)


def main():
    module = AnsibleModule(argument_spec=dict(FILTER_SPEC), supports_check_mode=True)
    rc, data, err = run(module, ["--list"] + filter_args(module.params))
    if rc != 0 or data is None:
        fail(module, rc, err)
    module.exit_json(changed=False, sessions=data)


if __name__ == "__main__":
    main()
