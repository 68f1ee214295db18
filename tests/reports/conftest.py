"""Planted trial databases and one report built from them, shared by the report tests of a session."""

from __future__ import annotations

import pytest

from tests.reports import sweepdb


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> sweepdb.Expected:
    """Sweep folder with mobilenetv3_large_100 and efficientnet_b0 studies (see sweepdb.planted_sweep)."""
    return sweepdb.planted_sweep(tmp_path_factory.mktemp("sweep") / "sweep")


@pytest.fixture(scope="session")
def resnet_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("r50") / "sweep"
    sweepdb.resnet50_sweep(folder)
    return folder


@pytest.fixture(scope="session")
def frames(planted, resnet_folder):
    from lightrecipe.reports import tables

    return tables.load([str(planted.folder), str(resnet_folder)])


@pytest.fixture(scope="session")
def figure_data(frames):
    """Each figure's data frame for the planted sweeps, ranked by kNN (fANOVA takes seconds: computed once)."""
    from lightrecipe.reports import figures

    return {spec.stem: spec.data(frames, "knn_top1") for spec in figures.FIGURES}


@pytest.fixture(scope="session")
def report(planted, resnet_folder, tmp_path_factory):
    from lightrecipe.reports.build import build_report

    return build_report([str(planted.folder), str(resnet_folder)], tmp_path_factory.mktemp("report") / "out")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """(sweep folder, report) for the database of hostile names (see sweepdb.hostile_sweep). The report is
    written to <tmp>/report next to <tmp>/sweep, so a file that escaped the report folder would be seen."""
    from lightrecipe.reports.build import build_report

    root = tmp_path_factory.mktemp("hostile")
    folder = sweepdb.hostile_sweep(root / "sweep")
    return folder, build_report(str(folder), root / "report")


@pytest.fixture(scope="session")
def one_arch_folder(tmp_path_factory):
    """A one-arch sweep of eleven knobs, like the built-in paper-efficient space on a single arch."""
    return sweepdb.arch_sweep(tmp_path_factory.mktemp("one-arch") / "sweep", ("mobilenetv3_small_050",))
