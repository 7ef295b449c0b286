"""The import rules in pyproject.toml hold, and each one catches the import it forbids.

import-linter checks them (`make lint`); here the same contracts run on grimp's graph of the
code as it is, then on the graph with one forbidden import added, which must break them.
"""

from __future__ import annotations

import copy

import grimp
import pytest
from importlinter import api as importlinter_api
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

from tests.support import ROOT

PYPROJECT = ROOT / "pyproject.toml"
CONTRACT_TYPES = {"forbidden": ForbiddenContract, "layers": LayersContract}
# For each contract, an import it must refuse (importer -> imported).
BREAKS = {
    "core": ("app.db", "app.loyalty.models"),
    "layers": ("app.messaging.outbox", "app.campaigns.delivery"),
    "loyalty": ("app.loyalty.service", "app.wallet.apple.service"),
    "auth": ("app.auth.service", "app.loyalty.models"),
    "no-wallet": ("app.geo.service", "app.wallet.google.service"),
}


@pytest.fixture(scope="module")
def configuration() -> dict:
    return importlinter_api.read_configuration(str(PYPROJECT))


@pytest.fixture(scope="module")
def graph(configuration) -> grimp.ImportGraph:
    options = configuration["session_options"]
    # import-linter hands its options on as the strings it read ("True").
    exclude = str(options["exclude_type_checking_imports"]).lower() == "true"
    # No cache: grimp would write .grimp_cache/ in the repository, from every worker at once.
    return grimp.build_graph(*options["root_packages"], exclude_type_checking_imports=exclude, cache_dir=None)


def _check(configuration: dict, graph: grimp.ImportGraph, contract_id: str):
    options = next(c for c in configuration["contracts_options"] if c["id"] == contract_id)
    contract = CONTRACT_TYPES[options["type"]](
        name=options["name"], session_options=configuration["session_options"], contract_options=options
    )
    return contract.check(copy.deepcopy(graph), verbose=False)


def test_every_contract_has_a_break_to_catch(configuration):
    assert {c["id"] for c in configuration["contracts_options"]} == set(BREAKS)


@pytest.mark.parametrize("contract_id", sorted(BREAKS))
def test_the_code_keeps_the_rule(configuration, graph, contract_id):
    check = _check(configuration, graph, contract_id)
    assert check.kept, check.metadata


@pytest.mark.parametrize("contract_id", sorted(BREAKS))
def test_the_rule_catches_a_forbidden_import(configuration, graph, contract_id):
    importer, imported = BREAKS[contract_id]
    broken = copy.deepcopy(graph)
    broken.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    assert not _check(configuration, broken, contract_id).kept
