"""Build the optional C speedups; everything else is in pyproject.toml.

``optional=True``: without a C compiler the build of the extension is skipped with a warning and
memgate runs on its numpy code paths, which give the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "memgate._speedups",
            ["memgate/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
