"""Notebook parameters against the names and types their parameters cell declares."""

import nbformat
import papermill
import pytest
from IPython.core.interactiveshell import InteractiveShell

from kgbias.parameters import check_parameters

PARAMETERS_CELL = 'datasets: list = ["toy"]\ntop_n: int = 20\nalpha: float = 0.01\nweights: dict = {}\nname: str = "toy"'


def notebook_namespace(injected: str) -> dict:
    """The namespace after the parameters cell and papermill's injected cell, as in a kernel."""
    shell = InteractiveShell.instance()
    shell.reset()
    shell.run_cell(PARAMETERS_CELL, store_history=True)  # as a kernel runs a notebook's cells
    shell.run_cell(injected, store_history=True)
    return shell.user_ns


def test_declared_types_pass():
    check_parameters(notebook_namespace('# Parameters\ndatasets = ["toy", "fb15k"]\ntop_n = 5\nalpha = 1\n'
                                        'weights = {"gender": 2}\n'))


def test_an_undeclared_parameter_is_named_with_the_closest_declared_one():
    # `-p topn 5` meant for top_n: papermill only warns, and the run would use top_n = 20
    with pytest.raises(TypeError, match=r"unknown parameter topn \(did you mean top_n\?\); this notebook's parameters: "
                                        r"datasets, top_n, alpha, weights, name$"):
        check_parameters(notebook_namespace("# Parameters\ndatasets = ['toy']\ntopn = 5\n"))
    with pytest.raises(TypeError, match=r"unknown parameter zzz; this notebook's parameters"):
        check_parameters(notebook_namespace("# Parameters\nzzz = 1\n"))


def test_the_paths_papermill_injects_itself_are_accepted():
    check_parameters(notebook_namespace('# Parameters\ntop_n = 5\nPAPERMILL_INPUT_PATH = "a.ipynb"\n'
                                        'PAPERMILL_OUTPUT_PATH = "b.ipynb"\n'))


def test_names_assigned_in_other_cells_are_not_parameters():
    namespace = notebook_namespace("# Parameters\ntop_n = 5\n")
    InteractiveShell.instance().run_cell("helper = 3\nresults = [1, 2]", store_history=True)
    check_parameters(namespace)


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


def test_papermill_run_with_a_mistyped_parameter_fails_naming_it(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(PARAMETERS_CELL, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from kgbias.parameters import check_parameters\ncheck_parameters(globals())"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "in.ipynb")
    papermill.execute_notebook(tmp_path / "in.ipynb", tmp_path / "ok.ipynb", parameters={"top_n": 3},
                               progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter topn"):
        papermill.execute_notebook(tmp_path / "in.ipynb", tmp_path / "typo.ipynb", parameters={"topn": 3},
                                   progress_bar=False)
