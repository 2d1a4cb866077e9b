"""The node adapters' layout and name checks (unit_nodes.nodes.layout needs no ComfyUI)."""
import pytest
import torch

from unit_nodes.nodes.layout import (
    check_save_name, core_to_image, domain_key, image_to_core, image_to_pil, preview_rows_to_image, unit_to_image,
)


def test_image_round_trip_keeps_values_and_layout():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 5, 7, 3, generator=g)  # ComfyUI: [B, H, W, C] in 0..1

    x = image_to_core(image)

    assert x.shape == (2, 3, 5, 7)
    assert x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x[1, 2, 4, 6], image[1, 4, 6, 2] * 2 - 1)
    torch.testing.assert_close(core_to_image(x), image)


def test_gray_core_images_become_rgb_images():
    gray = torch.linspace(-1, 1, 12).view(1, 1, 3, 4)
    image = core_to_image(gray)
    assert image.shape == (1, 3, 4, 3)
    torch.testing.assert_close(image[..., 0], image[..., 2])
    torch.testing.assert_close(image[0, 0, 0], torch.zeros(3))
    error = unit_to_image(torch.full((1, 1, 2, 2), 0.25))
    assert error.shape == (1, 2, 2, 3) and torch.all(error == 0.25)


def test_rgba_and_unbatched_images_are_accepted():
    assert image_to_core(torch.rand(4, 4, 4)).shape == (1, 4, 4, 4)  # alpha is dropped later, by the core
    assert image_to_core(torch.rand(3, 6, 2, 1)).shape == (3, 1, 6, 2)


@pytest.mark.parametrize("bad, message", [
    (torch.rand(1, 8, 8, 2), "2 channels"),
    (torch.rand(8, 8), "shape"),
    (torch.zeros(0, 8, 8, 3), "empty"),
    (torch.zeros(1, 8, 8, 3, dtype=torch.uint8), "float"),
    ("not an image", "IMAGE tensor"),
])
def test_wrong_images_are_named_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        image_to_core(bad, "image")


def test_domains():
    assert domain_key("A") == "a" and domain_key("b") == "b"
    with pytest.raises(ValueError, match="'A' or 'B'"):
        domain_key("C")


@pytest.mark.parametrize("name", ["my-model", "emoji_v2", "run.3", "Model 7"])
def test_good_save_names(name):
    assert check_save_name(f"  {name} ") == name


@pytest.mark.parametrize("name", ["", "   ", "../evil", "a/b", "a\\b", "..", ".hidden", "x..y", "tab\tname", "x" * 200])
def test_bad_save_names(name):
    with pytest.raises(ValueError, match="save name"):
        check_save_name(name)


def test_preview_rows_stack_into_one_image_and_enlarge():
    rows = torch.rand(4, 3, 8, 24)
    image = preview_rows_to_image(rows)
    assert image.shape == (1, 32, 24, 3)
    torch.testing.assert_close(image[0, 8:16], rows[1].permute(1, 2, 0))
    pil = image_to_pil(image, min_width=100)
    assert pil.size == (120, 160) and pil.mode == "RGB"


def test_pack_entry_point_imports_without_comfyui():
    import importlib.util
    import inspect
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("unit_nodes_pack_root", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert inspect.iscoroutinefunction(module.comfy_entrypoint)
    assert "comfy_api" not in sys.modules and "folder_paths" not in sys.modules
