"""Settings for the scripts here: base settings from a params.yaml with --set KEY=VALUE overrides
(linear_probe.py), and for the sweep scripts (gpu_sweep.py, repeated_cv.py) --variant NAME
[KEY=VALUE ...] changing some of them.
Values are read as YAML and every variant is checked as params.yaml itself is (arena_pref.params)."""

from __future__ import annotations

import argparse
import copy
import sys

import yaml

from arena_pref.params import Params, ParamsError, parse_params


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """--params and --set: the base settings of every script here."""
    parser.add_argument("--params", default="params.yaml", help="base settings (default %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a base setting, e.g. model.backbone=/path/to/minilm (repeatable)")


def add_variant_options(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("--variant", action="append", nargs="+", required=True, metavar=("NAME", "KEY=VALUE"),
                        help="a variant: a name, then the settings it changes (repeatable)")


def with_overrides(raw: dict, assignments: list[str], where: str, prog: str) -> dict:
    """A copy of the params mapping with KEY=VALUE assignments applied (values read as YAML)."""
    raw = copy.deepcopy(raw)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in raw or name not in raw[section]:
            sys.exit(f"{prog}: {where}: {assignment!r} is not KEY=VALUE with KEY a params.yaml key such as train.lr")
        raw[section][name] = yaml.safe_load(value)
    return raw


def base_settings(args: argparse.Namespace, prog: str) -> dict:
    """The params mapping of --params with the --set overrides applied (not yet checked)."""
    with open(args.params, encoding="utf-8") as f:
        return with_overrides(yaml.safe_load(f), args.set, "--set", prog)


def build_settings(args: argparse.Namespace, prog: str) -> Params:
    """The checked Params of --params and --set, for a script without variants; exits with a message on a bad one."""
    try:
        return parse_params(base_settings(args, prog))
    except ParamsError as err:
        sys.exit(f"{prog}: --set: {err}")


def build_variants(args: argparse.Namespace, prog: str) -> dict[str, Params]:
    """{variant name: its checked Params}, in the order given; exits with a message on a bad one."""
    base = base_settings(args, prog)
    variants = {}
    for name, *assignments in args.variant:
        if name in variants:
            sys.exit(f"{prog}: variant {name!r} given twice")
        try:
            variants[name] = parse_params(with_overrides(base, assignments, f"--variant {name}", prog))
        except ParamsError as err:
            sys.exit(f"{prog}: --variant {name}: {err}")
    return variants
