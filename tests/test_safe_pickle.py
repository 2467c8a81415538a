"""Pickled inputs (SMPL .pkl body models, the official joblib databases) run no code of theirs: a payload is
refused by name before it runs, and the files these formats really hold still load."""
import io
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from core.body_model import BodyModel
from core.errors import InputError
from core.resources import FREE_BODY_MODEL
from core.safe_pickle import load_joblib, load_pickle


class Payload:
    """Unpickling this writes ``marker``: what a malicious file would do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "ran")


def smpl_data() -> dict:
    with np.load(FREE_BODY_MODEL) as archive:
        return {k: archive[k] for k in ("v_template", "f", "kintree_table", "weights", "shapedirs", "J_regressor")}


def test_a_body_model_pickle_with_a_payload_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({**smpl_data(), "extra": Payload(marker)}))
    with pytest.raises(InputError, match=r"SMPL_NEUTRAL\.pkl.*unsafe pickle.*pathlib"):
        BodyModel(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(smpl_data(), protocol=2))  # the same file without it: loads
    assert BodyModel(path).num_vertices == np.load(FREE_BODY_MODEL)["v_template"].shape[0]


@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "builtins.eval", "subprocess.Popen"])
def test_well_known_payload_callables_are_refused(payload):
    module, name = payload.rsplit(".", 1)
    stream = io.BytesIO(f"c{module}\n{name}\n(S'touch /tmp/x'\ntR.".encode())  # protocol 0: GLOBAL, REDUCE
    with pytest.raises(pickle.UnpicklingError, match=payload.replace(".", r"\.")):
        load_pickle(stream)


def test_a_database_with_a_payload_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "h36m_test_db.pt"
    joblib.dump({"img_name": np.array(["a"]), "joints2D": np.zeros((1, 49, 3)), "x": Payload(marker)}, path)
    with pytest.raises(InputError, match=r"h36m_test_db\.pt.*unsafe pickle"):
        load_joblib(path)
    assert not marker.exists()
    joblib.dump({"img_name": np.array(["a"]), "joints2D": np.zeros((1, 49, 3)),
                 "t": torch.arange(3.0)}, path)  # arrays beside the pickle, and a torch tensor: loads
    loaded = load_joblib(path)
    assert loaded["joints2D"].shape == (1, 49, 3) and torch.equal(loaded["t"], torch.arange(3.0))


def test_a_torch_storage_with_a_payload_inside_is_refused(tmp_path):
    """A pickled tensor's storage is itself a torch file; read with weights_only, a payload there fails."""
    marker = tmp_path / "marker.txt"
    inner = io.BytesIO()
    torch.save({"x": Payload(marker)}, inner)
    from torch.storage import _load_from_bytes

    class Storage:
        def __reduce__(self):
            return _load_from_bytes, (inner.getvalue(),)

    path = tmp_path / "BEHAVE_valid_db.pt"
    joblib.dump([{"storage": Storage()}], path)
    with pytest.raises(InputError, match=r"BEHAVE_valid_db\.pt"):
        load_joblib(path)
    assert not marker.exists()


def test_checkpoints_and_traces_never_unpickle_code(tmp_path, body):
    """Checkpoints load with torch's weights_only and traces with allow_pickle=False: a payload in either is
    refused with the file named, and nothing runs."""
    from core.model.checkpoint import load_model
    from core.trace import RefinementTrace

    marker = tmp_path / "marker.txt"
    checkpoint = tmp_path / "model.pt"
    torch.save({"format": "heatformer-studio-checkpoint", "state_dict": {}, "x": Payload(marker)}, checkpoint)
    with pytest.raises(InputError, match=r"model\.pt"):
        load_model(checkpoint, body)
    trace = tmp_path / "trace.npz"
    np.savez(trace, header=np.array([Payload(marker)], dtype=object))
    with pytest.raises(InputError, match=r"trace\.npz"):
        RefinementTrace.load(trace)
    assert not marker.exists()
