"""The documentation: it builds without warnings, and its examples are true.

- The Sphinx build runs with warnings as errors (skipped without Sphinx).
- The worked example of docs/formats.rst runs as a doctest, and its numbers
  are checked against the package's own maps, network and reassembly.
- Every command of docs/tutorial.rst parses with the real argument parser and
  every Python block compiles; the slow test runs the whole tutorial, as
  written, in an empty directory.
"""

import doctest
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

_BLOCK = re.compile(
    r"^\.\. code-block:: (?P<language>\w+)\n(?P<options>(?:   :[\w-]+:.*\n)*)\n"
    r"(?P<body>(?:(?:   .*)?\n)+)",
    re.MULTILINE,
)


def code_blocks(page):
    """(language, name, code) of each ``code-block`` of a page, in order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer(text):
        name = re.search(r":name: (\S+)", match["options"])
        lines = [line[3:] for line in match["body"].splitlines()]
        code = "\n".join(lines).strip("\n") + "\n"
        blocks.append((match["language"], name[1] if name else None, code))
    return blocks


def commands(bash):
    """The ``neurosynchro`` command lines of a bash block, as argument lists."""
    joined = bash.replace("\\\n", " ")
    return [
        shlex.split(line)[1:]
        for line in joined.splitlines()
        if line.startswith("neurosynchro ")
    ]


def test_sphinx_build_has_no_warnings(tmp_path):
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("sphinx is not installed (pip install sphinx)")
    out = tmp_path / "html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for page in ("index", "tutorial", "formats", "physics", "cli", "api"):
        assert (out / f"{page}.html").is_file()

    # The CLI reference is generated from the parser: every subcommand is
    # there with its own options.
    from neurosynchro.cli import build_parser

    cli = (out / "cli.html").read_text(encoding="utf-8")
    names = re.findall(r"^    (\S+)", build_parser().format_help(), re.MULTILINE)
    assert "make-training-set" in names and "lock-domain-range" in names
    for name in names:
        assert f"usage: neurosynchro {name}" in cli
    assert "--distribution" in cli and "--fits" in cli

    # The trainer table comes from neurosynchro.training.TRAINERS.
    formats = (out / "formats.html").read_text(encoding="utf-8")
    assert "clip_sigma" in formats and "[256, 256]" in formats

    api = (out / "api.html").read_text(encoding="utf-8")
    for name in (
        "compute_all_nontrivial",
        "load_pretrained",
        "integrate_ray",
        "compute_coefficients",
        "detrivialize_stokes_basis",
        "NeurosynchroError",
        "fit_coefficients",
    ):
        assert name in api, name


@pytest.fixture(scope="module")
def worked_example():
    """Run the doctest of formats.rst; return its names and the results."""
    text = (DOCS / "formats.rst").read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(
        text, {}, "formats.rst", str(DOCS / "formats.rst"), 0
    )
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, clear_globs=False)
    return test.globs, result


def test_formats_worked_example_runs_as_shown(worked_example):
    names, result = worked_example
    assert result.attempted >= 10
    assert result.failed == 0


def test_formats_worked_example_matches_the_package(worked_example):
    from neurosynchro.mappings import MAP_TYPES, Mapping
    from neurosynchro.network import Network
    from neurosynchro.physics import cyclotron_frequency, fold_angle
    from neurosynchro.transform import from_internal

    ex, _ = worked_example
    np.testing.assert_allclose(
        ex["s"], ex["nu"] / cyclotron_frequency(ex["B"]), rtol=1e-14
    )
    folded, v_sign = fold_angle(np.array([ex["theta"]]))
    np.testing.assert_allclose(folded, ex["theta_folded"], rtol=1e-15)
    assert v_sign[0] == ex["v_sign"]

    # The doc's table of maps and normalizations, through the package's Mapping.
    table = {
        "s": ("log", 3.0, 0.6),
        "theta": ("direct", 0.8, 0.45),
        "theta_e": ("log", 1.1, 0.35),
        "j_I": ("log", -37.6, 2.5),
        "j_frac_pol": ("logit", 1.2, 0.9),
        "j_V_share": ("logit", -2.5, 1.6),
    }
    maps = {
        name: Mapping(
            name,
            MAP_TYPES[kind],
            x_mean=mean,
            x_std=std,
            phys_min=-np.inf,
            phys_max=np.inf,
            norm_min=-np.inf,
            norm_max=np.inf,
        )
        for name, (kind, mean, std) in table.items()
    }
    row = [
        maps["s"].phys_to_norm(ex["s"])[0],
        maps["theta"].phys_to_norm(folded[0])[0],
        maps["theta_e"].phys_to_norm(ex["theta_e"])[0],
    ]
    np.testing.assert_allclose(ex["n"], row, rtol=1e-14)

    network = Network(
        [ex["kernel_0"], ex["kernel_1"]],
        [ex["bias_0"], ex["bias_1"]],
        ["softplus", "linear"],
    )
    output = network(np.array([row]))
    np.testing.assert_allclose(ex["output"], output, rtol=1e-14)

    results = {
        "j_I": maps["j_I"].norm_to_phys(output)[0],
        "j_frac_pol": maps["j_frac_pol"].norm_to_phys(np.array([0.4]))[0],
        "j_V_share": maps["j_V_share"].norm_to_phys(np.array([-0.3]))[0],
    }
    for name in ("alpha_I", "alpha_frac_pol", "alpha_V_share"):
        results[name] = results[name.replace("alpha", "j")]
    signs = {"j_Q": -1, "alpha_Q": -1, "j_V": 1, "alpha_V": 1}
    eight = from_internal(results, signs, v_sign)[0]
    scale = ex["n_e"] * ex["nu"]
    np.testing.assert_allclose(
        [ex["j_I"], ex["j_Q"], ex["j_V"]], eight[[0, 2, 4]] * scale, rtol=1e-12
    )
    assert ex["j_V"] < 0 < ex["j_I"]


def test_tutorial_commands_parse():
    from neurosynchro.cli import build_parser

    parser = build_parser()
    blocks = code_blocks("tutorial.rst")
    lines = [c for lang, _, code in blocks if lang == "bash" for c in commands(code)]
    used = {line[0] for line in lines}
    assert {
        "make-training-set",
        "transform",
        "init-nndir",
        "lock-domain-range",
        "train",
        "validate",
    } <= used
    for line in lines:
        args = parser.parse_args(line)
        assert args.command == line[0]


def test_tutorial_python_blocks_compile():
    blocks = [code for lang, _, code in code_blocks("tutorial.rst") if lang == "python"]
    assert len(blocks) >= 3
    for code in blocks:
        compile(code, "tutorial.rst", "exec")


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("NEUROSYNCHRO_LONG_TESTS") != "1",
    reason="about 5 minutes; set NEUROSYNCHRO_LONG_TESTS=1 to run",
)
def test_tutorial_runs_as_written(tmp_path):
    """Every block of the tutorial, in order, in an empty directory."""
    pytest.importorskip("keras")
    from neurosynchro.pretrained import available

    scripts = Path(sys.executable).parent
    if not (scripts / "neurosynchro").exists():
        pytest.skip(f"the neurosynchro command is not installed in {scripts}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"
    python = []
    for language, name, code in code_blocks("tutorial.rst"):
        if language == "bash":
            done = subprocess.run(
                ["bash", "-e", "-c", code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            assert done.returncode == 0, f"{code}\n{done.stderr[-3000:]}"
        elif language == "python":
            if name == "tutorial-pretrained" and "thermal" not in available():
                continue
            python.append(code)
    assert (tmp_path / "nn" / "j_I.npz").is_file()
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(python)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "j_I = " in done.stdout
    assert done.stdout.count(" Hz: I = ") == 3
