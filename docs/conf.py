"""Sphinx configuration of the neurosynchro documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
Only Sphinx itself is needed: the theme is the alabaster that ships with it,
and the command-line reference is rendered by the small directive below from
the real argparse parser, so it never falls out of step with the code.
"""

import argparse
import inspect
import re
import sys
from pathlib import Path

from docutils.parsers.rst import Directive

ROOT = Path(__file__).resolve().parents[1]
# Document the checkout these files belong to, installed or not.
sys.path.insert(0, str(ROOT))

import neurosynchro  # noqa: E402

project = "neurosynchro"
author = "the neurosynchro authors"
copyright = "the neurosynchro authors; MIT license"
release = neurosynchro.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {
    "description": "Neural approximations of polarized synchrotron coefficients",
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_static_path = []
# Plain double-backquoted names are code, as in the docstrings.
default_role = "code"
highlight_language = "python3"

# The docstrings are numpydoc.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = True
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# Show defaults as written (np.float64), not as their repr.
autodoc_preserve_defaults = True
# Only Python's and the package's own names are resolved; a reference to a
# name that is not documented stays plain text instead of failing the build.
nitpicky = False


# Module docstrings use numpydoc-style headings ("File format", "Sources",
# "Sign conventions") that numpydoc renders as rubrics but that napoleon
# leaves as underlined titles, which would become sections of the API page
# itself, at whatever level their underline happens to match. Render any
# such remaining heading as a rubric, which is what it means.
_UNDERLINE = re.compile(r"^\s*([-=~^\"'`])\1{2,}\s*$")


def _indent(line):
    return len(line) - len(line.lstrip())


# The docstrings also write formulas as an indented block after a paragraph
# ("The sum over harmonics is split as" and then the formula, indented),
# meaning preformatted text; docutils reads such a block as a quotation,
# where a line starting with "+" begins a list, and fails. Make such a block
# the literal block it means: the paragraph gets the "::" marker (which
# shows as one colon after a colon, and not at all after a space).
_NOT_PROSE = re.compile(r"^(:|\.\.|>>>|[-*+] |#\. |\d+\. )")


def _formula_blocks_to_literal(app, what, name, obj, options, lines):
    literal_indent = None
    first = None
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if literal_indent is not None:
            if _indent(line) > literal_indent:
                continue
            literal_indent = None
        previous_blank = index == 0 or not lines[index - 1].strip()
        if previous_blank:
            first = line
        text = line.rstrip()
        if text.endswith("::"):
            literal_indent = _indent(first)
            continue
        after = index + 1
        if after >= len(lines) or lines[after].strip():
            continue
        following = next((x for x in lines[after:] if x.strip()), "")
        if (
            following
            and _indent(following) > _indent(first)
            and not _NOT_PROSE.match(first.lstrip())
        ):
            lines[index] = text + (":" if text.endswith(":") else " ::")
            literal_indent = _indent(first)


def _headings_to_rubrics(app, what, name, obj, options, lines):
    index = 0
    while index + 1 < len(lines):
        title, underline = lines[index], lines[index + 1]
        match = _UNDERLINE.match(underline)
        above_is_blank = index == 0 or not lines[index - 1].strip()
        if (
            match
            and title.strip()
            and above_is_blank
            and len(underline.strip()) >= len(title.strip())
            and not _UNDERLINE.match(title)
        ):
            indent = title[: len(title) - len(title.lstrip())]
            lines[index : index + 2] = [f"{indent}.. rubric:: {title.strip()}", ""]
        index += 1


class NeurosynchroCommands(Directive):
    """Render ``neurosynchro --help`` and every subcommand's ``--help``.

    Each subcommand becomes a section (one level below the page title) with
    its help text as a literal block, from
    :func:`neurosynchro.cli.build_parser`.
    """

    has_content = False
    #: Width the help text is wrapped to, whatever the terminal.
    width = 79

    def _help(self, parser):
        formatter_class = parser.formatter_class
        parser.formatter_class = lambda prog: formatter_class(prog, width=self.width)
        try:
            return parser.format_help()
        finally:
            parser.formatter_class = formatter_class

    def run(self):
        from neurosynchro.cli import build_parser

        parser = build_parser()
        subcommands = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                subcommands = action.choices
        lines = [".. code-block:: text", ""]
        lines += ["   " + line for line in self._help(parser).splitlines()]
        lines.append("")
        for name, subparser in subcommands.items():
            title = f"``neurosynchro {name}``"
            lines += [title, "-" * len(title), "", ".. code-block:: text", ""]
            lines += ["   " + line for line in self._help(subparser).splitlines()]
            lines.append("")
        source = self.state_machine.input_lines.source(
            self.lineno - self.state_machine.input_offset - 1
        )
        self.state_machine.insert_input(lines, source)
        return []


class NeurosynchroTrainers(Directive):
    """A table of the trainers' default settings, from the code.

    Columns: the setting, its default in each trainer of
    :data:`neurosynchro.training.TRAINERS`, and its description from the
    Attributes section of :class:`~neurosynchro.training.TrainerSettings`.
    """

    has_content = False

    @staticmethod
    def _descriptions(doc):
        """Attribute name -> description, from a numpydoc Attributes section."""
        lines = inspect.cleandoc(doc).splitlines()
        start = lines.index("Attributes") + 2
        out, name = {}, None
        for line in lines[start:]:
            if line and not line.startswith(" "):
                name = line.split(" : ")[0].strip()
                out[name] = []
            elif line.strip() and name:
                out[name].append(line.strip())
        return {k: " ".join(v) for k, v in out.items()}

    @staticmethod
    def _value(value):
        if isinstance(value, tuple):
            return "[" + ", ".join(map(str, value)) + "]"
        return f"{value:g}" if isinstance(value, float) else str(value)

    def run(self):
        from neurosynchro.training import TRAINERS, TrainerSettings

        described = self._descriptions(TrainerSettings.__doc__)
        names = list(TRAINERS)
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: " + " ".join(["20"] + ["11"] * len(names) + ["47"]),
            "",
            "   * - setting",
            *(f"     - ``{name}``" for name in names),
            "     - meaning",
        ]
        for key in TrainerSettings.keys():
            lines.append(f"   * - ``{key}``")
            for name in names:
                lines.append(f"     - {self._value(getattr(TRAINERS[name], key))}")
            lines.append(f"     - {described.get(key, '')}")
        source = self.state_machine.input_lines.source(
            self.lineno - self.state_machine.input_offset - 1
        )
        self.state_machine.insert_input(lines + [""], source)
        return []


def setup(app):
    app.add_directive("neurosynchro-trainers", NeurosynchroTrainers)
    app.connect("autodoc-process-docstring", _headings_to_rubrics)
    app.connect("autodoc-process-docstring", _formula_blocks_to_literal)
    app.add_directive("neurosynchro-commands", NeurosynchroCommands)
    return {"parallel_read_safe": True}
