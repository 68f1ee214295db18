"""The timm name snapshot answers like timm itself, and is used without importing timm."""

from __future__ import annotations

import subprocess
import sys

import pytest
import timm

from lightrecipe.errors import UserError
from lightrecipe.trainers.fields.arch_names import check_arch, snapshot


def test_the_snapshot_is_the_installed_timm_list():
    version, names = snapshot()
    assert version == timm.__version__
    assert names == frozenset(timm.list_models())


def test_a_known_arch_passes_and_an_unknown_one_names_the_nearest():
    check_arch("mobilenetv3_large_100")
    with pytest.raises(UserError, match=r"'mobilenetv3_large_10', not a timm model \(did you mean 'mobilenetv3_large_100'\?\)"):
        check_arch("mobilenetv3_large_10")


def test_a_model_registered_by_the_user_is_accepted_once_timm_knows_it():
    from timm.models import register_model

    @register_model
    def lightrecipe_test_tiny_net(pretrained=False, **kwargs):  # noqa: ARG001 only its name matters here
        raise NotImplementedError

    check_arch("lightrecipe_test_tiny_net")


@pytest.mark.slow
def test_validating_a_recipe_and_a_space_imports_no_torch():
    code = ("import sys; from lightrecipe.spaces import load_space; from lightrecipe.trainers.recipe import preset\n"
            "load_space('paper-efficient'); preset('resnet50-mocov2', arch='efficientnet_b0')\n"
            "try: preset('resnet50-mocov2', arch='efficientnet_b9')\n"
            "except Exception as exc: print(exc)\n"
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["recipe field 'arch' is 'efficientnet_b9', not a timm model "
                                "(did you mean 'efficientnet_b8'?); see timm.list_models() for valid names", "[]"]
