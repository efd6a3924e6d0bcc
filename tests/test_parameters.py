"""Notebook parameters against the types their parameters cell declares."""

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kgbias.parameters import check_parameters

PARAMETERS_CELL = 'datasets: list = ["toy"]\ntop_n: int = 20\nalpha: float = 0.01\nweights: dict = {}\nname: str = "toy"'


def notebook_namespace(injected: str) -> dict:
    """The namespace after the parameters cell and papermill's injected cell, as in a kernel."""
    shell = InteractiveShell.instance()
    shell.reset()
    shell.run_cell(PARAMETERS_CELL)
    shell.run_cell(injected)
    return shell.user_ns


def test_declared_types_pass():
    check_parameters(notebook_namespace('datasets = ["toy", "fb15k"]\ntop_n = 5\nalpha = 1\nweights = {"gender": 2}'))


@pytest.mark.parametrize("injected, message", [
    ('datasets = "toy"', r"parameter datasets must be list, got 'toy'; papermill's -p .* -y 'datasets: \.\.\.'"),
    ('weights = "gender=5"', "parameter weights must be dict, got 'gender=5'; papermill's -p"),
    ('top_n = "abc"', "parameter top_n must be int, got 'abc'$"),
    ("top_n = True", "parameter top_n must be int, got True"),
    ("alpha = None", "parameter alpha must be float, got None"),
])
def test_a_parameter_of_another_type_is_named(injected, message):
    with pytest.raises(TypeError, match=message):
        check_parameters(notebook_namespace(injected))
