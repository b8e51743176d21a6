# -*- coding: utf-8 -*-
# Copyright: logoff developers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""The filters both modules take (module_utils/logoff.py's FILTER_SPEC), documented once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  user:
    description: Only sessions of these users (names or uids).
    type: list
    elements: str
    default: []
  state:
    description: Only sessions in these states (C(disconnected) means nothing connects them).
    type: list
    elements: str
    default: []
    choices: [active, online, closing, idle, disconnected]
  idle_for:
    description: Only sessions idle at least this long (C(30m), C(2h)).
    type: str
  from_host:
    description: Only sessions from this host or network (C(10.0.0.0/8)), as vouched for.
    type: str
    aliases: [from]
  remote:
    description: Only remote (C(true)) or local (C(false)) sessions.
    type: bool
  backend:
    description: Where sessions come from (C(auto) is logind where it answers).
    type: str
    default: auto
    choices: [auto, logind, procfs]
  executable:
    description: The logoff to run.
    type: path
    default: logoff
"""
