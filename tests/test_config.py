"""nn_config.toml: defaults, locking that keeps the user's text, old configs."""

import numpy as np
import pytest
from test_transform import synthetic

from neurosynchro.config import (
    CONFIG_NAME,
    DEFAULT_CONFIG,
    init_nndir,
    load_config,
    lock_domain_range,
)
from neurosynchro.errors import ConfigError
from neurosynchro.samples import read_training_set, write_table
from neurosynchro.transform import to_internal


@pytest.fixture
def transformed(tmp_path, rng):
    table, suffixes, _ = to_internal(synthetic(rng))
    path = tmp_path / "transformed.txt"
    write_table(path, table, suffixes)
    return read_training_set(path)


def test_init_writes_the_default_and_refuses_to_overwrite(tmp_path):
    path = init_nndir(tmp_path / "nn")
    assert path.read_text() == DEFAULT_CONFIG
    config = load_config(tmp_path / "nn", need_bounds=False)
    assert config.param_names == ["s", "theta"]
    assert [r.name for r in config.results][:2] == ["j_I", "alpha_I"]
    # rho_Q is learned signed, through a row scale; no separate sign network.
    rho_q = config.result("rho_Q").mapping
    assert (rho_q.maptype.name, rho_q.scale_mode) == ("asinh", "quadratic")
    assert "rho_Q_sign" not in [r.name for r in config.results]
    with pytest.raises(ConfigError, match="already exists"):
        init_nndir(tmp_path / "nn")


def test_lock_keeps_comments_and_order(tmp_path, transformed):
    nndir = tmp_path / "nn"
    init_nndir(nndir)
    path = nndir / CONFIG_NAME
    text = path.read_text().replace(
        'name = "j_I"\n', 'name = "j_I"  # my favourite\nepochs = 7\n'
    )
    path.write_text("# my own header\n" + text)
    config = lock_domain_range(transformed, nndir)
    locked = path.read_text()
    assert locked.startswith("# my own header\n# neurosynchro network configuration.")
    assert 'name = "j_I"  # my favourite\nepochs = 7\n' in locked
    assert config.result("j_I").settings == {"epochs": 7}
    s = config.params[0]
    assert (s.phys_min, s.phys_max) == (
        transformed.table["s"].min(),
        transformed.table["s"].max(),
    )
    assert config.signs == {
        "j_Q": -1,
        "alpha_Q": -1,
        "j_V": 1,
        "alpha_V": 1,
        "rho_V": 1,
    }
    assert "training_set_sha256" in locked
    # Locking again is idempotent.
    lock_domain_range(transformed, nndir)
    assert path.read_text() == locked


def test_lock_adds_model_parameters_and_drops_missing_rotativities(
    tmp_path, symphony_dir
):
    table, suffixes, _ = to_internal(read_training_set(symphony_dir / "powerlaw.txt"))
    write_table(tmp_path / "t.txt", table, suffixes)
    init_nndir(tmp_path / "nn")
    config = lock_domain_range(read_training_set(tmp_path / "t.txt"), tmp_path / "nn")
    assert config.param_names == ["s", "theta", "p"]
    assert config.params[2].maptype.name == "direct"
    assert not config.has_rotativities
    assert "rho_Q" not in (tmp_path / "nn" / CONFIG_NAME).read_text()


def test_config_naming_parameters_the_table_lacks(tmp_path, transformed):
    init_nndir(tmp_path / "nn")
    path = tmp_path / "nn" / CONFIG_NAME
    path.write_text(path.read_text() + '\n[[params]]\nname = "p"\nmaptype = "direct"\n')
    before = path.read_text()
    with pytest.raises(ConfigError, match="names input parameter.*p.*lacks"):
        lock_domain_range(transformed, tmp_path / "nn")
    assert path.read_text() == before


PREDECESSOR = """\
[[params]]
name = "s"
maptype = "log"
phys_bounds_mode = "empirical"
normalization_mode = "gaussian"
out_of_sample = "ignore"
x_mean = 2.5
x_std = 1.2
phys_min = 1.0
phys_max = 1e5
norm_min = -2.0
norm_max = 2.0

[[params]]
name = "theta"
maptype = "direct"
phys_bounds_mode = "theta"
normalization_mode = "gaussian"
out_of_sample = "clip"
x_mean = 0.8
x_std = 0.45
phys_min = 0.0
phys_max = 1.5707963267948966
norm_min = -1.8
norm_max = 1.7

[[results]]
name = "j_I"
maptype = "log"
phys_bounds_mode = "empirical"
normalization_mode = "gaussian"
trainer = "generic"
out_of_sample = "ignore"
x_mean = -30.0
x_std = 2.0
phys_min = 1e-40
phys_max = 1e-25
norm_min = -3.0
norm_max = 3.0

[[results]]
name = "rho_Q_sign"
maptype = "direct"
normalization_mode = "unit_interval"
trainer = "generic"
x_mean = -1
x_std = 2
phys_min = -1
phys_max = 1
norm_min = 0
norm_max = 1
"""


def test_predecessor_config_loads(tmp_path):
    path = tmp_path / CONFIG_NAME
    path.write_text(PREDECESSOR)
    config = load_config(path)
    assert config.param_names == ["s", "theta"]
    j_I = config.result("j_I").mapping
    np.testing.assert_allclose(j_I.norm_to_phys(np.array([0.5]))[0], 10**-29)
    # The predecessor kept only rows with these signs.
    assert config.signs == {
        "j_Q": -1,
        "alpha_Q": -1,
        "j_V": 1,
        "alpha_V": 1,
        "rho_V": 1,
    }


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda t: t + "\n[[params\n", "TOML syntax error"),
        (lambda t: t.replace('maptype = "log"', 'maptype = "cube"', 1), "'cube'"),
        (lambda t: t.replace('trainer = "generic"', 'trainer = "magic"', 1), "magic"),
        (lambda t: t.replace("x_std = 1.2", 'x_std = "big"'), "x_std = 'big'"),
        (lambda t: t.replace("x_std = 1.2\n", ""), r"x_std missing.*lock-domain-range"),
    ],
)
def test_bad_configs(tmp_path, edit, pattern):
    path = tmp_path / CONFIG_NAME
    path.write_text(edit(PREDECESSOR))
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (
            lambda t: t.replace("x_std = 1.2", "x_sdt = 1.2"),
            "unknown key 'x_sdt'; did you",
        ),
        (
            lambda t: t.replace('out_of_sample = "ignore"', 'out_of_sampel = "nan"', 1),
            r"#1: unknown key 'out_of_sampel'; did you mean 'out_of_sample'",
        ),
        (
            lambda t: t + "\n[training]\nepoch = 40\n",
            r"\[training\]: unknown key 'epoch'",
        ),
        (
            lambda t: t + "\n[trainig]\nepochs = 40\n",
            "unknown key 'trainig'; did you mean",
        ),
    ],
)
def test_misspelled_keys_are_errors_not_ignored(tmp_path, edit, pattern):
    path = tmp_path / CONFIG_NAME
    path.write_text(edit(PREDECESSOR))
    with pytest.raises(ConfigError, match=pattern):
        load_config(tmp_path)


THERMAL_CUT = """
[[params]]
name = "theta_e"
maptype = "log"
x_mean = 0.5
x_std = 0.5
phys_min = 0.5
phys_max = 100.0
norm_min = -2.0
norm_max = 2.0

[[domain]]
name = "nu/nu_s"
factor = 4.5
powers = { s = 1, theta_e = -2, sin_theta = -1 }
max = 1e4
"""


def test_domain_limit_flags_the_cut_off_corner(tmp_path):
    path = tmp_path / CONFIG_NAME
    path.write_text(PREDECESSOR + THERMAL_CUT)
    (limit,) = load_config(path).domain
    # nu / nu_s = s / ((2/9) theta_e^2 sin theta) (e.g. Leung et al. 2011).
    theta_e, theta = np.array([1.0, 10.0, 0.5]), np.array([1.0, 0.3, np.pi / 2])
    boundary = 1e4 * (2 / 9) * theta_e**2 * np.sin(theta)
    inside = {"s": boundary * 0.99, "theta": theta, "theta_e": theta_e}
    beyond = {"s": boundary * 1.01, "theta": theta, "theta_e": theta_e}
    assert not limit.outside(inside).any()
    assert limit.outside(beyond).all()
    nan = {
        "s": np.array([np.nan]),
        "theta": np.array([1.0]),
        "theta_e": np.array([1.0]),
    }
    assert limit.outside(nan).all()


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (
            lambda t: t.replace("max = 1e4", "maximum = 1e4"),
            r"unknown key 'maximum'; did you mean 'max'",
        ),
        (lambda t: t.replace("max = 1e4", ""), r"expected min and/or max"),
        (
            lambda t: t.replace("sin_theta", "tan_theta"),
            r"powers has 'tan_theta'; expected names among s, theta, theta_e, "
            r"sin_theta",
        ),
        (
            lambda t: t.replace("factor = 4.5", "factor = -1"),
            r"factor = -1.0; expected a number > 0",
        ),
        (
            lambda t: t.replace("theta_e = -2", 'theta_e = "two"'),
            r"powers.theta_e = 'two'; expected a number",
        ),
    ],
)
def test_bad_domain_tables(tmp_path, edit, pattern):
    path = tmp_path / CONFIG_NAME
    path.write_text(edit(PREDECESSOR + THERMAL_CUT))
    with pytest.raises(ConfigError, match=r"\[\[domain\]\] #1: " + pattern):
        load_config(path)


def test_lock_fits_the_rho_q_row_scale_and_load_checks_its_length(
    tmp_path, transformed
):
    nndir = tmp_path / "nn"
    init_nndir(nndir)
    config = lock_domain_range(transformed, nndir)
    assert config.has_rotativities  # rho_Q signed needs no rho_Q_sign
    rho_q = config.result("rho_Q").mapping
    # s and theta: 1 + 2 + 3 coefficients of the quadratic.
    assert len(rho_q.scale_coefficients) == 6
    # A least-squares fit with a constant term leaves residuals of zero
    # mean: the row scales' mean log is that of |rho_Q| (over the rows
    # whose inputs lie inside the bounds, here all).
    table = transformed.table
    inputs = np.stack(
        [m.phys_to_norm(table[m.name].to_numpy())[0] for m in config.params], axis=1
    )
    log_scale = np.log(rho_q.row_scale(inputs) / rho_q.scale_factor)
    assert log_scale.mean() == pytest.approx(
        np.log(np.abs(table["rho_Q"])).mean(), rel=1e-10
    )
    path = nndir / CONFIG_NAME
    text = path.read_text()
    start = text.index("scale_coefficients = [") + len("scale_coefficients = [")
    path.write_text(text[:start] + "1.0, " + text[start:])
    with pytest.raises(
        ConfigError, match=r"\(rho_Q\): 7 scale_coefficients for 2 inputs; expected 6"
    ):
        load_config(nndir)


def test_rho_q_magnitude_without_its_sign_is_refused(tmp_path, transformed):
    nndir = tmp_path / "nn"
    init_nndir(nndir)
    path = nndir / CONFIG_NAME
    text = path.read_text()
    old = 'maptype = "asinh"\nscale_mode = "quadratic"\nscale_factor = 3.0\n'
    assert old in text
    path.write_text(text.replace(old, 'maptype = "abs_log"\n'))
    with pytest.raises(
        ConfigError, match=r"rho_Q has maptype 'abs_log'.*no rho_Q_sign"
    ):
        lock_domain_range(transformed, nndir)


def test_row_scale_keys_on_an_input_are_refused(tmp_path, transformed):
    nndir = tmp_path / "nn"
    init_nndir(nndir)
    path = nndir / CONFIG_NAME
    text = path.read_text()
    path.write_text(
        text.replace('name = "s"\n', 'name = "s"\nscale_mode = "quadratic"\n')
    )
    with pytest.raises(
        ConfigError,
        match=r"\[\[params\]\] #1: scale_mode applies to \[\[results\]\] tables only",
    ):
        lock_domain_range(transformed, nndir)
    assert path.read_text() != text  # the user's edit, untouched by the refusal
    with pytest.raises(ConfigError, match="applies to"):
        load_config(nndir, need_bounds=False)


def test_row_scale_needs_nonzero_rows_and_says_which_file(tmp_path, transformed):
    nndir = tmp_path / "nn"
    init_nndir(nndir)
    transformed.table["rho_Q"] = 0.0
    with pytest.raises(
        ConfigError,
        match=r"transformed\.txt: rho_Q: only 0 rows with a finite, non-zero value",
    ):
        lock_domain_range(transformed, nndir)
