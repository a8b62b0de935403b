"""Loading torchvision models and local state dicts for the command line: one-line errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from attribmap.errors import AttribmapError
from attribmap.models.loading import load_state_dict_file, load_torchvision_model


@pytest.fixture(scope="module")
def resnet18_state(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "r18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def test_a_local_state_dict_loads_plain_or_nested(resnet18_state, tmp_path):
    state = torch.load(resnet18_state, weights_only=True)
    nested = tmp_path / "nested.pt"
    torch.save({"epoch": 3, "state_dict": state}, nested)
    model = load_torchvision_model("resnet18", str(nested))
    assert torch.equal(model.conv1.weight, state["conv1.weight"]) and not model.training


class Pickled:
    """A class a weights-only load must refuse to rebuild."""


def _bad_files(tmp_path, resnet18_state):
    image = tmp_path / "photo.pth"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image, format="PNG")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(resnet18_state.read_bytes()[:5000])
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], listed)

    pickled = tmp_path / "object.pth"
    with open(pickled, "wb") as handle:  # an arbitrary pickled object: refused by weights_only
        pickle.dump({"model": Pickled()}, handle)
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights")
    return {image: "it is a PNG image, not a torch file", truncated: "truncated or corrupt",
            listed: "holds list, not a state dict", pickled: "pickled Python objects", text: "not a torch file"}


def test_files_that_are_not_state_dicts_give_one_line_naming_file_and_reason(resnet18_state, tmp_path):
    for path, reason in _bad_files(tmp_path, resnet18_state).items():
        with pytest.raises(AttribmapError) as info:
            load_state_dict_file(path)
        message = str(info.value)
        assert path.name in message and reason in message, message
        assert "\n" not in message and "weights_only=False" not in message, message


def test_wrong_architecture_is_summarised_with_counts(resnet18_state):
    with pytest.raises(AttribmapError) as info:
        load_torchvision_model("resnet34", str(resnet18_state))
    message = str(info.value)
    assert "do not fit resnet34" in message and "missing" in message and "keys" in message
    assert len(message) < 400 and "\n" not in message, message
