"""The child-process helper cannot hang the suite: past its limit the test fails with the child's stack."""
from __future__ import annotations

import pytest

from tests.helpers import PROJECT_ROOT, program, run
from tests.programs.noisy_failure import REASON


def test_a_child_past_its_limit_fails_the_test_with_its_stack():
    with pytest.raises(pytest.fail.Exception) as failed:
        run(program("stuck"), PROJECT_ROOT, timeout=3)
    assert "ran past 3 s" in str(failed.value)
    assert "waiting_forever" in str(failed.value)   # faulthandler's dump names the function it hung in


def test_a_failing_child_is_an_assertion_with_its_output():
    with pytest.raises(AssertionError, match="exit 3") as failed:
        run(program("noisy_failure"), PROJECT_ROOT, check=True)
    assert REASON in str(failed.value)
