"""labkit's HTML pages and fragments: jinja2 templates, package data, autoescape on.

Every value reaches the markup escaped unless the caller hands it over as
:class:`markupsafe.Markup` (a chart or a flamegraph that labkit rendered itself).
Templates live in ``labkit/report/templates/pages``.
"""

from __future__ import annotations

import functools
from pathlib import PurePath
from typing import Any

import jinja2
from markupsafe import Markup


@functools.cache
def environment() -> jinja2.Environment:
    """The one environment: package loader, autoescape, undefined names are errors."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("labkit.report", "templates/pages"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["basename"] = lambda path: PurePath(str(path)).name
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` (``findings.html.j2``...) with ``context``."""
    return environment().get_template(name).render(**context)


def macro(name: str, macro_name: str, **context: Any) -> Any:
    """A macro of the template ``name``, its module rendered with ``context``."""
    return getattr(environment().get_template(name).make_module(context), macro_name)


def trusted(text: str) -> Markup:
    """``text`` that labkit made itself (a chart, a flamegraph, a style sheet, a script),
    placed as it is."""
    return Markup(text)
