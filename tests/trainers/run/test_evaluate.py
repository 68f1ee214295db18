"""kNN against a literal loop transcription, linear probes on separable and random data, feature extraction."""

import copy
import math

import pytest
import timm
import torch

from lightrecipe.trainers.data.datasets import load_digits_arrays
from lightrecipe.trainers.data.pixels import normalize, resize_uint8
from lightrecipe.trainers.data.splits import TensorSplit
from lightrecipe.trainers.run.evaluate import extract_features, knn_top1, linear_probe


def reference_knn_predictions(memory, memory_labels, queries, k, temperature, num_classes):
    """InstDisc's weighted kNN, loop by loop, in float64 Python."""
    def unit(v):
        norm = math.sqrt(sum(a * a for a in v))
        return [a / norm for a in v]

    memory = [unit(m) for m in memory.tolist()]
    predictions = []
    for q in queries.tolist():
        q = unit(q)
        sims = [sum(a * b for a, b in zip(q, m)) for m in memory]
        nearest = sorted(range(len(memory)), key=lambda j: -sims[j])[:k]
        scores = [0.0] * num_classes
        for j in nearest:
            scores[int(memory_labels[j])] += math.exp(sims[j] / temperature)
        predictions.append(max(range(num_classes), key=lambda c: (scores[c], -c)))
    return torch.tensor(predictions)


@pytest.mark.parametrize("k,temperature,chunk_size", [(1, 0.1, 1024), (5, 0.07, 7), (20, 0.5, 3), (200, 1.0, 64)])
def test_knn_matches_loop_reference(k, temperature, chunk_size):
    g = torch.Generator().manual_seed(k)
    memory, queries = torch.randn(60, 8, generator=g), torch.randn(25, 8, generator=g)
    memory_labels, query_labels = torch.randint(0, 4, (60,), generator=g), torch.randint(0, 4, (25,), generator=g)
    expected = reference_knn_predictions(memory, memory_labels, queries, min(k, 60), temperature, 4)
    run = dict(k=k, temperature=temperature, num_classes=4, chunk_size=chunk_size)
    # labelling the queries with the reference's predictions makes every single prediction count
    assert knn_top1(memory, memory_labels, queries, expected, **run) == 1.0
    accuracy = (expected == query_labels).float().mean().item()
    assert knn_top1(memory, memory_labels, queries, query_labels, **run) == pytest.approx(accuracy)


def test_knn_separated_clusters():
    centres = torch.eye(5, 16) * 10
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(5).repeat_interleave(20)
    memory = centres[labels] + 0.1 * torch.randn(100, 16, generator=g)
    queries = centres[labels] + 0.1 * torch.randn(100, 16, generator=g)
    assert knn_top1(memory, labels, queries, labels, k=10, temperature=0.1, num_classes=5) == 1.0
    assert knn_top1(memory, labels, queries, (labels + 1) % 5, k=10, temperature=0.1, num_classes=5) == 0.0


def test_knn_tiny_temperature_is_nearest_neighbour_without_overflow():
    """At t -> 0 the nearest neighbour outweighs all others; exp(sim / 1e-4) alone would overflow."""
    memory = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.8, 0.61], [0.8, 0.62]])
    memory_labels = torch.tensor([0, 1, 1, 1])
    query = torch.tensor([[1.0, 0.05]])
    assert knn_top1(memory, memory_labels, query, torch.tensor([0]), k=4, temperature=1e-4, num_classes=2) == 1.0
    # a large temperature is a plain majority vote among the k neighbours
    assert knn_top1(memory, memory_labels, query, torch.tensor([1]), k=4, temperature=100.0, num_classes=2) == 1.0


def separable(n, d=16, classes=4, seed=0, shuffle_labels=False):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(99)) * 3
    feats = centres[labels] + torch.randn(n, d, generator=g)
    if shuffle_labels:
        labels = torch.randint(0, classes, (n,), generator=g)
    return feats * 5 + 2, labels  # an offset and scale that standardisation must absorb


@pytest.mark.parametrize("method,kw", [
    ("lbfgs", {}), ("sgd", dict(epochs=30, lr=30.0)), ("lbfgs", dict(weight_decay=1e-2))])
def test_probe_learns_separable_features(method, kw):
    train = separable(400)
    result = linear_probe(*train, {"val": separable(200, seed=1), "test": separable(200, seed=2)},
                          num_classes=4, method=method, **kw)
    assert set(result) == {"val", "test"} and result["val"] >= 0.97 and result["test"] >= 0.97


@pytest.mark.parametrize("method", ["lbfgs", "sgd"])
def test_probe_on_random_labels_is_near_chance(method):
    train = separable(300, d=64, shuffle_labels=True, seed=3)
    evals = {"test": separable(800, d=64, shuffle_labels=True, seed=4), "train": train}
    result = linear_probe(*train, evals, num_classes=4, method=method, epochs=100, lr=1.0)
    assert abs(result["test"] - 0.25) < 0.07
    # while it fits its own training set well above chance: the probe does learn, it just cannot generalise
    assert result["train"] > 0.5


def test_lbfgs_probe_is_deterministic_and_ignores_sgd_knobs():
    train, evals = separable(300), {"val": separable(100, seed=5), "test": separable(100, seed=6)}
    a = linear_probe(*train, evals, num_classes=4)
    b = linear_probe(*train, evals, num_classes=4, epochs=3, lr=1e-6, seed=9)
    assert a == b


def test_sgd_probe_reproducible_from_seed():
    train, evals = separable(300, shuffle_labels=True), {"test": separable(100, seed=7)}
    run = dict(num_classes=4, method="sgd", epochs=5, lr=0.5)
    assert linear_probe(*train, evals, seed=1, **run) == linear_probe(*train, evals, seed=1, **run)
    assert linear_probe(*train, evals, seed=1, **run) != linear_probe(*train, evals, seed=2, **run)


def noisy(n, d=48, seed=0, noise=3.0):
    """Labels from a noisy linear rule: few images in many dimensions, where the L2 strength matters."""
    g = torch.Generator().manual_seed(seed)
    rule = torch.randn(d, 4, generator=torch.Generator().manual_seed(99))
    x = torch.randn(n, d, generator=g)
    return x, (x @ rule + noise * torch.randn(n, 4, generator=g)).argmax(1)


def test_probe_regularisation_is_never_chosen_on_an_eval_set():
    """The L2 strength comes from a held-out part of train: relabelling val cannot change any score but val's
    (on this data the grid's strengths score differently on val, so choosing there would move test)."""
    train, val, test = noisy(80, seed=1), noisy(200, seed=3), noisy(400, seed=2)
    scrambled = (val[0], (val[1] + 1) % 4)
    a = linear_probe(*train, {"val": val, "test": test}, num_classes=4)
    b = linear_probe(*train, {"val": scrambled, "test": test}, num_classes=4)
    c = linear_probe(*train, {"test": test}, num_classes=4)
    assert a["test"] == b["test"] == c["test"]
    assert a["val"] != b["val"]  # the scrambled labels were scored, not used


def test_probe_rejects_unknown_method():
    with pytest.raises(ValueError, match="lbfgs"):
        linear_probe(*separable(10), {}, num_classes=4, method="adam")


# --- features ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0)


@pytest.fixture(scope="module")
def split():
    images, labels = load_digits_arrays()
    return TensorSplit(resize_uint8(torch.from_numpy(images[:40]), 32), torch.from_numpy(labels[:40]), 10)


def test_extract_features_shape_values_and_restores_mode(model, split):
    model.train()
    model.blocks[0].eval()  # a mixed state must come back exactly as it was
    feats, labels = extract_features(model, split, device=torch.device("cpu"), batch_size=16)
    # timm's contract: the output width is head_hidden_size when a pre-logits layer follows the last stage
    assert feats.shape == (40, model.head_hidden_size) and feats.dtype == torch.float32
    assert torch.equal(labels, split.labels)
    assert model.training and not model.blocks[0].training and model.conv_head.training
    model.eval()
    with torch.no_grad():
        expected = model(normalize(split.images))
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-5)
    extract_features(model, split, device="cpu", batch_size=64)
    assert not model.training


def test_extract_features_channels_last_and_bf16(model, split):
    model.eval()
    plain, _ = extract_features(model, split, device="cpu")
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)  # the shared fixture stays as it is
    last, _ = extract_features(model_cl, split, device="cpu", channels_last=True)
    torch.testing.assert_close(last, plain, rtol=1e-4, atol=1e-4)
    assert model.conv_stem.weight.is_contiguous() and not model.conv_stem.weight.is_contiguous(
        memory_format=torch.channels_last)
    half, _ = extract_features(model, split, device="cpu", precision="bf16")
    assert half.dtype == torch.float32
    assert not torch.equal(half, plain), "bf16 features equal fp32 ones: the precision setting was ignored"
    cosine = torch.nn.functional.cosine_similarity(half, plain, dim=1)
    assert cosine.min() > 0.95


def test_the_monitor_of_a_backbone_with_overflowed_weights_is_nan_not_an_error():
    """A step can leave non-finite weights behind a finite loss; train() then ends the run as diverged because
    the monitor reads NaN (an SVD of NaN features would raise instead)."""
    from lightrecipe.trainers.data.datasets import load_dataset
    from lightrecipe.trainers.recipe import preset
    from lightrecipe.trainers.run.scoring import val_monitor

    recipe = preset("digits-small", image_size=16, data_fraction=0.1)
    backbone = timm.create_model(recipe.arch, pretrained=False, num_classes=0).eval()
    data = load_dataset(recipe)
    assert math.isfinite(val_monitor(backbone, data, recipe, torch.device("cpu"))["knn_top1"])
    with torch.no_grad():
        next(backbone.parameters()).fill_(float("inf"))
    monitor = val_monitor(backbone, data, recipe, torch.device("cpu"))
    assert math.isnan(monitor["knn_top1"]) and math.isnan(monitor["feature_rank"])
