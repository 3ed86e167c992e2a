"""Every `headwater` command and every option or argument of it says what it is for."""

from __future__ import annotations

import argparse

import pytest

from headwater.client.commands import PARAM_HELP, parse_params
from headwater.server.cli import build_parser

pytestmark = pytest.mark.pure


def undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            for name, sub in action.choices.items():
                if name not in helped:
                    missing.append(f"{path} {name} (the command itself)")
                missing += undocumented(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
            missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help():
    assert undocumented(build_parser(), "headwater") == []


def test_the_walk_finds_an_option_without_help():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers().add_parser("x", help="x")
    sub.add_argument("--bare")
    assert undocumented(parser, "p") == ["p x: --bare"]


def test_param_help_describes_what_parse_params_does():
    assert parse_params(["n=3", "on=true", "x=null", "xs=[1,2]", 's="3"', "city=Paris", "e=", "q=a=b"]) == {
        "n": 3, "on": True, "x": None, "xs": [1, 2], "s": "3", "city": "Paris", "e": "", "q": "a=b",
    }
    for claim in ("n=3 is the number 3", "on=true a boolean", "x=null null", "xs='[1,2]' a list",
                  "city=Paris", "empty VALUE is the empty string", "after the first '='"):
        assert claim in PARAM_HELP
