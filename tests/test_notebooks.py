"""Every notebook documents its parameters, and every paper-scale parameter file matches them."""

from pathlib import Path

import papermill
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
PARAMS = sorted((ROOT / "params" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_is_typed_and_documented(notebook):
    parameters = papermill.inspect_notebook(str(notebook))
    assert "figures_dir" in parameters
    for name, parameter in parameters.items():
        assert parameter["help"].strip(), f"{notebook.name}: parameter {name} has no help comment"
        assert parameter["inferred_type_name"] != "None", f"{notebook.name}: parameter {name} has no type"


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: p.stem)
def test_paper_parameters_exist_in_their_notebook(params):
    notebook = ROOT / "notebooks" / (params.stem.split("@")[0] + ".ipynb")
    assert notebook.exists(), f"{params.name} has no notebook"
    given = yaml.safe_load(params.read_text())
    unknown = set(given) - set(papermill.inspect_notebook(str(notebook)))
    assert not unknown, f"{params.name}: not parameters of {notebook.name}: {sorted(unknown)}"
    assert given["figures_dir"] == "../figures"


def test_every_notebook_has_paper_parameters():
    stems = {p.stem.split("@")[0] for p in PARAMS}
    assert stems == {n.stem for n in NOTEBOOKS}
