"""workflow_format.ui_to_api reads widget values the way the ComfyUI editor lays them out,
so a UI workflow whose values would land on the wrong inputs in the editor fails here too."""
import pytest

from workflow_format import WorkflowFormatError, has_control_widget, ui_to_api


def node_info(seed_options: dict) -> dict:
    """A node shaped like Train UNIT: a seed between other widgets, combos after it."""
    return {"TrainLike": {
        "input": {"required": {
            "steps": ["INT", {"default": 10, "min": 1, "max": 1000}],
            "seed": ["INT", {"default": 0, "min": 0, "max": 2**32, **seed_options}],
            "preset": ["COMBO", {"options": ["digits32", "emoji64"]}],
            "channels": ["COMBO", {"options": ["rgb", "gray"]}],
            "preview_every": ["INT", {"default": 100, "min": 0}],
        }},
        "input_order": {"required": ["steps", "seed", "preset", "channels", "preview_every"]},
        "output": [],
    }}


def workflow(values: list) -> dict:
    return {"version": 0.4, "links": [],
            "nodes": [{"id": 1, "type": "TrainLike", "inputs": [], "outputs": [], "widgets_values": values}]}


EXPECTED = {"steps": 5, "seed": 7, "preset": "emoji64", "channels": "rgb", "preview_every": 100}


@pytest.mark.parametrize("seed_options", [{}, {"control_after_generate": True}])
def test_a_seed_has_a_control_slot_unless_it_declares_none(seed_options):
    info = node_info(seed_options)
    prompt = ui_to_api(workflow([5, 7, "fixed", "emoji64", "rgb", 100]), info)
    assert prompt["1"]["inputs"] == EXPECTED

    with pytest.raises(WorkflowFormatError, match="control after generate"):
        ui_to_api(workflow([5, 7, "emoji64", "rgb", 100]), info)  # the old train template's mistake


def test_a_seed_that_declares_no_control_has_no_slot():
    info = node_info({"control_after_generate": False})
    assert ui_to_api(workflow([5, 7, "emoji64", "rgb", 100]), info)["1"]["inputs"] == EXPECTED
    with pytest.raises(WorkflowFormatError, match="shifted"):
        ui_to_api(workflow([5, 7, "fixed", "emoji64", "rgb", 100]), info)


@pytest.mark.parametrize("values, message", [
    ([5, 7, "fixed", "rgb", "emoji64", 100], "preset: 'rgb' is not one of"),
    ([5, 7, "fixed", "emoji64", "rgb", "both"], "preview_every: 'both' is not an integer"),
    ([0, 7, "fixed", "emoji64", "rgb", 100], r"steps: 0 is outside \[1, 1000\]"),
    ([5, 7, "fixed", "emoji64", "rgb", 100, 3], "1 widget value"),
    ([5, 7, "fixed", "emoji64", "rgb"], "no widget value for 'preview_every'"),
])
def test_values_on_the_wrong_inputs_are_named(values, message):
    with pytest.raises(WorkflowFormatError, match=message):
        ui_to_api(workflow(values), node_info({}))


def test_which_inputs_get_a_control_widget():
    assert has_control_widget("noise_seed", ["INT", {}])
    assert not has_control_widget("steps", ["INT", {}])
    assert has_control_widget("steps", ["INT", {"control_after_generate": True}])
    assert not has_control_widget("seed", ["INT", {"control_after_generate": False}])
    assert has_control_widget("sampler", ["COMBO", {"options": ["a"], "control_after_generate": True}])
    assert not has_control_widget("seed", ["FLOAT", {}])
