"""The app's edit pipeline without a browser (inpaintzoo.app.pipeline): what reaches the network,
bit-exact known pixels, object edges placement, bad inputs; and the page's error guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintzoo.app import pipeline as P
from inpaintzoo.predictor import Predictor


@pytest.fixture(scope="module")
def model():
    from inpaintzoo import zoo

    torch.manual_seed(0)
    m = zoo.create_model("edgeconnect", variant="tiny")
    with torch.no_grad():  # an untrained net outputs near-constant maps: perturb it
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m.eval()


def _photo(h: int = 64, w: int = 64) -> np.ndarray:
    from inpaintzoo.data import read_image

    photo = read_image(P.sample_photos()["chelsea.png"])
    return P.resize_image(photo, (h, w))


def _box_mask(h: int, w: int, top: int, left: int, bh: int, bw: int) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[top : top + bh, left : left + bw] = 1.0
    return mask


class _Capture:
    """Records the inpainting generator's input (``[image*(1-m)+m, edge]``)."""

    def __init__(self, model):
        self.inputs: list[torch.Tensor] = []
        self.handle = model.inpaint_generator.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.inputs.append(args[0].detach().clone())

    def close(self):
        self.handle.remove()


def test_edge_guided_is_decided_in_one_place(model):
    from inpaintzoo.baselines import create_baseline

    assert P.edge_guided(model) is True
    assert P.edge_guided(create_baseline("telea")) is False
    assert P.ModelEntry("ec", Predictor(model, device="cpu"), "x").edge_guided is True
    assert P.ModelEntry("t", Predictor(create_baseline("telea")), "telea").edge_guided is False


def test_painted_layers_become_the_full_resolution_hole():
    layer = np.zeros((128, 96, 4), np.uint8)  # display canvas, 2x the 64 x 48 image
    layer[20:40, 10:30] = (255, 0, 255, 153)  # a semi-transparent brush
    layer[100, 0:96] = (255, 0, 255, 20)  # a 1-pixel anti-aliased stroke
    mask = P.mask_from_layers([layer, None], (64, 48))
    expected = np.zeros((64, 48), np.float32)
    expected[10:20, 5:15] = 1.0
    expected[50, :] = 1.0  # the thin stroke survives the 2x shrink (area > 0)
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(P.mask_from_layers([], (5, 7)), np.zeros((5, 7)))


def test_predicted_edges_are_the_models_own(model):
    image = _photo()
    mask = _box_mask(64, 64, 20, 16, 24, 30)
    predictor = Predictor(model, device="cpu", max_side=1024)
    maps = P.predict_edges(predictor, image, mask)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    m = torch.from_numpy(mask)[None, None]
    with torch.no_grad():
        ref = model.predict_edges(x * (1 - m), m)
    np.testing.assert_array_equal(maps.known, ref["edge_known"][0, 0].numpy())
    np.testing.assert_allclose(maps.predicted, ref["edge_pred"][0, 0].numpy(), atol=1e-6)
    assert maps.known[mask > 0].sum() == 0  # test-mode Canny: nothing inside the hole
    assert maps.known.sum() > 20  # the photo has edges
    np.testing.assert_array_equal(maps.mask, mask)
    assert maps.shape == (64, 64) and maps.full_shape == (64, 64)


def test_unedited_edges_reproduce_the_models_own_result(model):
    # a multiple of the size multiple: the predictor pads an extra map with zeros, where the
    # model's own path has the padded image's Canny edges (the app passes no edge map unedited)
    image = _photo(64, 72)
    mask = _box_mask(64, 72, 10, 20, 25, 30)
    predictor = Predictor(model, device="cpu")
    maps = P.predict_edges(predictor, image, mask)
    own = P.inpaint(predictor, image, mask)  # EdgeConnect builds its edge map itself
    edited = P.inpaint(predictor, image, mask, P.compose_edges(maps))
    np.testing.assert_array_equal(own, edited)


def test_drawn_and_erased_edges_reach_the_network(model):
    image = _photo()
    mask = _box_mask(64, 64, 16, 12, 32, 40)
    predictor = Predictor(model, device="cpu")
    maps = P.predict_edges(predictor, image, mask)
    drawn = np.zeros((64, 64), np.float32)
    drawn[30, 0:64] = 1.0  # crosses the hole and the known region
    erased = np.zeros((64, 64), np.float32)
    erased[16:48, 40:52] = 1.0
    edge = P.compose_edges(maps, drawn=drawn, erased=erased)
    capture = _Capture(model)
    try:
        P.inpaint(predictor, image, mask, edge)
    finally:
        capture.close()
    (net_in,) = capture.inputs
    assert net_in.shape == (1, 4, 64, 64)
    got_edge = net_in[0, 3].numpy()
    np.testing.assert_array_equal(got_edge, edge)
    hole = mask > 0
    assert (got_edge[30, 12:40] == 1).all()  # the drawn line, inside the hole
    assert (got_edge[16:48, 40:52] == 0).all()  # the erased block
    known = ~hole
    np.testing.assert_array_equal(got_edge[known], maps.known[known])  # no edit outside
    # the image channels: hole filled with 1 (EdgeConnect's input), known pixels as given
    assert (net_in[0, :3][:, torch.from_numpy(hole)] == 1).all()


def test_edits_reach_the_network_through_the_high_resolution_path(model):
    h, w = 96, 150
    image = _photo(h, w)
    mask = _box_mask(h, w, 30, 40, 40, 60)
    predictor = Predictor(model, device="cpu", max_side=64)
    maps = P.predict_edges(predictor, image, mask)
    work = P.working_size((h, w), 64)
    assert maps.shape == work == (41, 64)
    drawn = np.zeros(work, np.float32)
    drawn[20, :] = 1.0
    drawn[:, 30] = 1.0  # one-pixel lines at working resolution
    edge = P.compose_edges(maps, drawn=drawn)
    capture = _Capture(model)
    try:
        result = P.inpaint(predictor, image, mask, edge)
    finally:
        capture.close()
    (net_in,) = capture.inputs
    got = net_in[0, 3, : work[0], : work[1]].numpy()  # the predictor padded 41 -> 44
    np.testing.assert_array_equal(got, edge)
    assert result.shape == (h, w, 3)
    known = mask < 0.5
    np.testing.assert_array_equal(result[known], image[known])


def test_lifted_edges_survive_the_predictors_nearest_downscale():
    rng = np.random.default_rng(0)
    for work, full in [((41, 64), (96, 150)), ((64, 48), (1000, 750)), ((33, 50), (67, 101))]:
        edge = (rng.random(work) > 0.9).astype(np.float32)
        big = P.edges_for_predictor(edge, full)
        assert big.shape == full
        back = F.interpolate(torch.from_numpy(big)[None, None], size=work, mode="nearest")
        np.testing.assert_array_equal(back[0, 0].numpy(), edge)


@pytest.mark.parametrize("max_side", [None, 48])
def test_composite_keeps_known_pixels_bit_exact(model, max_side):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(70, 93, 3), dtype=np.uint8)
    mask = _box_mask(70, 93, 11, 17, 30, 41)
    predictor = Predictor(model, device="cpu", max_side=max_side)
    result = P.inpaint(predictor, image, mask)
    assert result.dtype == np.uint8 and result.shape == image.shape
    known = mask < 0.5
    np.testing.assert_array_equal(result[known], image[known])
    assert (result[~known] != image[~known]).any()  # the hole was filled with something new


def test_classical_model_inpaints_from_the_mask_alone():
    from inpaintzoo.baselines import create_baseline

    image = _photo(50, 40)
    mask = _box_mask(50, 40, 10, 10, 12, 12)
    predictor = Predictor(create_baseline("telea"))
    result = P.inpaint(predictor, image, mask)
    np.testing.assert_array_equal(result[mask < 0.5], image[mask < 0.5])
    with pytest.raises(P.AppError, match="takes no edge map"):
        P.inpaint(predictor, image, mask, np.zeros((50, 40), np.float32))
    with pytest.raises(P.AppError, match="inpaints from the mask alone"):
        P.predict_edges(predictor, image, mask)


def _square_object(size: int = 40, side: int = 20) -> np.ndarray:
    obj = np.zeros((size, size, 3), np.uint8)
    lo = (size - side) // 2
    obj[lo : lo + side, lo : lo + side] = 255
    return obj


def test_object_edges_land_where_the_user_put_them():
    obj = _square_object(40, 20)  # a white square filling the middle half of its image
    edges = P.place_object_edges(obj, (64, 96), center=(60.0, 25.0), size=32, sigma=1.0)
    assert edges.shape == (64, 96) and set(np.unique(edges)) <= {0.0, 1.0}
    ys, xs = np.nonzero(edges)
    assert len(ys) > 20
    # the square is 16 px at this scale (32 / 40 * 20), centred where it was put
    assert abs((xs.min() + xs.max()) / 2 - 60) <= 1.0
    assert abs((ys.min() + ys.max()) / 2 - 25) <= 1.0
    assert 13 <= xs.max() - xs.min() <= 19 and 13 <= ys.max() - ys.min() <= 19
    moved = P.place_object_edges(obj, (64, 96), center=(30.0, 40.0), size=32, sigma=1.0)
    np.testing.assert_array_equal(np.roll(np.roll(edges, 15, axis=0), -30, axis=1), moved)


def test_object_edges_are_clipped_at_the_border_and_replace_the_prediction():
    obj = _square_object(40, 20)
    edges = P.place_object_edges(obj, (32, 32), center=(0.0, 0.0), size=40, sigma=1.0)
    assert edges.shape == (32, 32) and edges[:12, :12].sum() > 0 and edges[20:, 20:].sum() == 0
    mask = _box_mask(32, 32, 0, 0, 16, 16)
    maps = P.EdgeMaps(
        known=np.zeros((32, 32), np.float32),
        predicted=np.full((32, 32), 0.7, np.float32),
        mask=mask,
        image=np.zeros((32, 32, 3), np.uint8),
        full_shape=(32, 32),
    )
    replaced = P.compose_edges(maps, object_edges=edges)
    np.testing.assert_array_equal(replaced[mask > 0], edges[mask > 0])
    assert replaced[mask == 0].sum() == 0  # outside the hole: the known edges only
    added = P.compose_edges(maps, object_edges=edges, object_replaces=False)
    np.testing.assert_array_equal(added[mask > 0], np.maximum(edges, 0.7)[mask > 0])


def test_fit_object_centres_on_the_hole():
    mask = _box_mask(64, 80, 10, 20, 20, 40)
    cx, cy, size = P.fit_object((30, 30), mask)
    assert (cx, cy, size) == (40.0, 20.0, 40.0)


def test_strokes_are_classified_by_brush_colour_and_thinned():
    layer = np.zeros((40, 40, 4), np.uint8)
    layer[10:13, 5:35] = (0, 200, 0, 255)  # draw
    layer[25:30, 5:20] = (255, 48, 48, 255)  # erase
    layer[13, 5:35] = (60, 150, 20, 90)  # an anti-aliased border of the green stroke
    strokes = P.strokes_from_layers(
        [layer], (20, 20), {"draw": (0, 200, 0), "erase": (255, 48, 48)}
    )
    assert strokes["draw"][5:7, 3:17].all() and strokes["draw"][12:].sum() == 0
    assert strokes["erase"][12:15, 3:10].all() and strokes["erase"][:12].sum() == 0
    thin = P.thin_strokes(strokes["draw"])
    assert thin.sum() > 0 and (thin.sum(axis=0)[4:16] == 1).all()  # one pixel per column


def test_display_and_working_sizes():
    assert P.working_size((3000, 2000), 1024) == (1024, 683)
    assert P.working_size((500, 300), 1024) == (500, 300)
    assert P.working_size((500, 300), None) == (500, 300)
    assert P.display_size((64, 48)) == (384, 288)  # integer enlargement
    assert P.display_size((2000, 1000)) == (768, 384)
    assert P.display_size((500, 400)) == (500, 400)


def test_bad_inputs_raise_app_errors_naming_the_fix(tmp_path, model):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(P.AppError, match="notes.png is not an image"):
        P.load_image(text)
    big = tmp_path / "big.png"
    P.save_png(np.zeros((300, 400, 3), np.uint8), big)
    with pytest.raises(P.AppError, match=r"400x300 .* over this app's limit .* downscale"):
        P.load_image(big, max_pixels=100_000)
    assert P.load_image(big).shape == (300, 400, 3)
    mask_file = tmp_path / "mask.png"
    P.save_png(np.ones((10, 12), np.float32), mask_file)
    with pytest.raises(P.AppError, match=r"mask.png is 12x10 but the image is 400x300"):
        P.load_mask_file(mask_file, (300, 400))
    with pytest.raises(P.AppError, match="of the image is hole"):  # auto: implausible
        P.load_mask_file(mask_file, (10, 12), polarity="auto")
    np.testing.assert_array_equal(P.load_mask_file(mask_file, (10, 12), "black_hole"), 0)
    with pytest.raises(P.AppError, match="no hole"):
        P.check_hole(np.zeros((8, 8), np.float32))
    with pytest.raises(P.AppError, match="covers the whole image"):
        P.check_hole(np.ones((8, 8), np.float32))
    with pytest.raises(P.AppError, match="checkpoint not found"):
        P.load_model(tmp_path / "missing.ckpt")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(P.AppError, match="not a Lightning checkpoint"):
        P.load_model(foreign)
    predictor = Predictor(model, device="cpu", max_side=32)
    image = _photo()
    mask = _box_mask(64, 64, 8, 8, 16, 16)
    with pytest.raises(P.AppError, match="predict the edges again"):
        P.inpaint(predictor, image, mask, np.zeros((64, 64), np.float32))


def test_load_model_from_a_lightning_checkpoint_and_a_baseline(tmp_path, model):
    import pytorch_lightning as pl

    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(path)
    entry = P.load_model(path, device="cpu", max_side=512)
    assert entry.edge_guided and entry.label == "edgeconnect tiny (tiny.ckpt)"
    assert entry.predictor.max_side == 512
    baseline = P.load_model("navier_stokes")
    assert not baseline.edge_guided and baseline.label == "navier_stokes (classical)"


def test_page_guard_shows_a_message_and_keeps_other_outputs():
    gr = pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    from inpaintzoo.app.ui import guarded

    @guarded(3)
    def user_error():
        raise P.AppError("no hole: paint it")

    @guarded(1)
    def crash():
        raise KeyError("boom")

    @guarded(3, clear=(2,))
    def rejected_upload():
        raise P.AppError("notes.txt is not an image")

    message, *rest = user_error()
    assert message == "**Error:** no hole: paint it"
    assert rest == [gr.skip(), gr.skip()]
    assert rejected_upload() == ("**Error:** notes.txt is not an image", gr.skip(), None)
    text = crash()
    assert text.startswith("**Error:** unexpected KeyError") and "Traceback" not in text


def _app_cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    from inpaintzoo.cli.common import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="app", overrides=list(overrides))


def test_app_cli_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    from inpaintzoo.cli.app import build

    with pytest.raises(SystemExit) as exit_info:
        build(_app_cfg(f"ckpt={tmp_path / 'missing.ckpt'}"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("inpaintzoo-app: error: checkpoint not found")


def test_app_serves_on_loopback_by_default(tmp_path):
    import socket
    import urllib.request

    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    from inpaintzoo.cli.app import run_app

    cfg = _app_cfg("ckpt=null", "baselines=[telea]", f"output_dir={tmp_path}")
    assert cfg.host == "127.0.0.1" and cfg.share is False  # the documented default
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg.port = port
    demo = run_app(cfg, block=False)
    try:
        assert demo.local_url.startswith(f"http://127.0.0.1:{port}")
        assert demo.server_name == "127.0.0.1"
        with urllib.request.urlopen(demo.local_url, timeout=30) as response:
            assert response.status == 200 and b"inpaintzoo" in response.read()
    finally:
        demo.close()


def test_deepfill_v2_strokes_are_its_sketch_channel():
    """A sketch-guided model (DeepFill v2 with ``sketch: true``): the page shows the known
    edges and an empty hole; the strokes drawn in the hole are the generator's sketch channel."""
    from inpaintzoo import zoo

    torch.manual_seed(0)
    m = zoo.create_model("deepfill_v2", variant="tiny", sketch=True).eval()
    assert P.sketch_guided(m) and P.edge_guided(m)
    plain_model = zoo.create_model("deepfill_v2", variant="tiny")
    assert not P.edge_guided(plain_model)  # no sketch channel: inpaints from the mask alone
    predictor = Predictor(m, device="cpu")
    image, mask = _photo(), _box_mask(64, 64, 16, 12, 32, 40)
    hole = mask > 0
    maps = P.predict_edges(predictor, image, mask)
    assert not maps.predicted.any() and not maps.known[hole].any() and maps.known[~hole].any()
    drawn = np.zeros((64, 64), np.float32)
    drawn[30, 0:64] = 1.0  # crosses the hole and the known region
    edge = P.compose_edges(maps, drawn=drawn)
    seen: list[torch.Tensor] = []
    handle = m.generator.coarse.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone())
    )
    try:
        guided = P.inpaint(predictor, image, mask, edge)
        P.inpaint(predictor, image, mask)
    finally:
        handle.remove()
    # (an untrained tiny gated net's output hardly moves with its input; what is checked is
    # that the strokes are exactly the network's sketch channel)
    assert seen[0].shape == (1, 6, 64, 64)  # image, sketch, ones, mask
    np.testing.assert_array_equal(seen[0][0, 3].numpy(), drawn * mask)  # strokes in the hole only
    assert not seen[1][0, 3].any()  # no strokes: an empty sketch
    assert (guided[~hole] == image[~hole]).all()
