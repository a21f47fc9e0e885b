"""Packaging entry point for neurosynchro.

Metadata and dependencies live here; pyproject.toml names the build system
and holds the tool settings (pytest, ruff).
"""

from setuptools import find_packages, setup

setup(
    name="neurosynchro",
    version="0.2.0.dev0",
    description=(
        "Neural-network approximations of polarized synchrotron "
        "radiative-transfer coefficients"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["neurosynchro", "neurosynchro.*"]),
    package_data={
        "neurosynchro": [
            "pretrained/*/*.toml",
            "pretrained/*/*.npz",
            "pretrained/*/*.json",
            "data/*.txt",
        ],
    },
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.11",
        "pandas>=2.0",
        "tomlkit>=0.12",
        "pwkit>=1.2",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        # The built-in calculator's Bessel and quadrature kernels.
        "numba>=0.58",
    ],
    extras_require={
        # Training needs Keras 3 on TensorFlow; inference never imports them.
        "train": ["keras>=3.0", "tensorflow>=2.16"],
        "cluster": ["dask[distributed]>=2023.1"],
        "docs": ["sphinx>=7"],
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "keras>=3.0",
            "tensorflow>=2.16",
            "dask[distributed]>=2023.1",
            "threadpoolctl>=3",
            "sphinx>=7",
        ],
    },
    entry_points={"console_scripts": ["neurosynchro = neurosynchro.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Astronomy",
        "Topic :: Scientific/Engineering :: Physics",
    ],
)
