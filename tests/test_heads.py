"""Zero-shot heads on inputs whose answers are known by construction."""
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from zslkit import DataError, config
from zslkit.evaluate.heads import HeadInput, apply_head, conse, eszsl, eszsl_map, learned, ridge, ridge_map
from zslkit.registry import HEADS


def head_params(name, **kw):
    return {**config.resolve({})["heads"][name], **kw}


def toy(n_seen=4, n_unseen=2, d=6, a=5, n=40, seed=0):
    """Seen and unseen tags whose learned embeddings are a linear map of their side information."""
    rng = np.random.default_rng(seed)
    side = rng.standard_normal((n_seen + n_unseen, a)).astype(np.float32)
    a_map = rng.standard_normal((a, d)).astype(np.float32)
    learned_emb = side @ a_map
    seen = np.arange(n_seen + n_unseen) < n_seen
    tracks = rng.standard_normal((n, d)).astype(np.float32)
    labels = rng.random((n, n_seen)) < 0.4
    return HeadInput(side, seen, learned_emb, tracks, labels), a_map


def test_learned_head_is_the_cosine_with_the_tag_branch():
    inp, _ = toy()
    tracks = inp.learned[[0, 5]]
    scores = learned(inp, head_params("learned"))(tracks)
    assert scores.shape == (2, 6)
    np.testing.assert_allclose(scores[[0, 1], [0, 5]], 1.0, rtol=1e-5)


def test_ridge_map_recovers_an_exact_linear_map():
    inp, a_map = toy(n_seen=12)
    w = ridge_map(inp.side[inp.seen].astype(np.float64), inp.learned[inp.seen].astype(np.float64), alpha=0.0)
    np.testing.assert_allclose(w, a_map, rtol=1e-4, atol=1e-4)
    # so an unseen tag lands where the map sends it, and a track on it scores 1
    scores = ridge(inp, head_params("ridge", alpha=1e-9))(inp.learned[[-1]])
    assert scores[0, -1] == pytest.approx(1.0, abs=1e-4)


def test_conse_with_one_seen_tag_scores_by_side_information_similarity():
    side = np.array([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0, 0, 1]], dtype=np.float32)  # X, X, Y, Y
    learned_emb = np.eye(4, dtype=np.float32)[:, :4]
    inp = HeadInput(side, np.array([True, True, False, False]), learned_emb, np.zeros((1, 4)), np.zeros((1, 2), bool))
    track = np.array([[1.0, 0.05, 0, 0]], dtype=np.float32)          # nearest seen tag: 0
    scores = conse(inp, head_params("conse", top=1))(track)
    cos = side @ side[0] / np.linalg.norm(side, axis=1)             # f(x) = side of seen tag 0
    np.testing.assert_allclose(scores[0], cos, rtol=1e-5)
    assert scores[0, 2] > scores[0, 3]                              # the unseen tag like tag 0 wins


def test_conse_softmax_weights_two_seen_tags():
    side = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    learned_emb = np.array([[1, 0], [0, 1], [0, 0]], dtype=np.float32)
    inp = HeadInput(side, np.array([True, True, False]), learned_emb, np.zeros((1, 2)), np.zeros((1, 2), bool))
    track = np.array([[1.0, 1.0]], dtype=np.float32)                  # equal cosine with both seen tags
    scores = conse(inp, head_params("conse", top=2, temperature=1.0))(track)
    assert scores[0, 2] == pytest.approx(1.0, abs=1e-6)              # the mix is (0.5, 0.5): along tag 2


def test_eszsl_with_identity_side_information_is_ridge_regression_of_the_labels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 30))                                 # (d, n)
    y = np.where(rng.random((30, 3)) < 0.5, 1.0, -1.0)               # (n, z)
    v = eszsl_map(x, y, np.eye(3), gamma=2.0, lam=0.0)
    expected = Ridge(alpha=2.0, fit_intercept=False).fit(x.T, y).coef_.T
    np.testing.assert_allclose(v, expected, rtol=1e-6, atol=1e-8)


def test_eszsl_ranks_unseen_tags_made_of_seen_attributes():
    rng = np.random.default_rng(2)
    n_attr, d = 4, 4
    seen_side = np.eye(n_attr)                                       # each seen tag: one attribute
    x = rng.standard_normal((200, d))
    labels = x @ np.eye(d) > 0.5                                     # tag j: feature j is high
    side = np.vstack([seen_side, [[1, 1, 0, 0]]]).astype(np.float32) # unseen tag: attributes 0 and 1
    inp = HeadInput(side, np.array([True] * 4 + [False]), np.zeros((5, d), np.float32), x.astype(np.float32),
                    labels)
    scores = eszsl(inp, head_params("eszsl", gamma=1.0, lam=0.1))(x.astype(np.float32))
    truth = (x[:, 0] > 0.5) & (x[:, 1] > 0.5)
    assert scores[truth, 4].mean() > scores[~truth, 4].mean() + 0.5


@pytest.mark.parametrize("name", ["learned", "conse", "ridge", "eszsl"])
def test_every_head_passes_the_no_unseen_fitting_check(name):
    inp, _ = toy(n_seen=8)
    scorer = apply_head(name, inp, head_params(name), inp.train_tracks[:10])
    assert scorer(inp.train_tracks[:3]).shape == (3, len(inp.side))


def test_a_head_that_fits_on_unseen_tags_is_refused():
    def cheat(inp, p):
        centre = inp.side.mean(axis=0)                               # uses every row, unseen included
        return lambda tracks: np.tile(inp.side @ centre, (len(tracks), 1))
    HEADS.register("cheat", cheat, doc="fits on unseen tags")
    try:
        inp, _ = toy()
        with pytest.raises(DataError, match="head 'cheat' uses unseen tags' side information"):
            apply_head("cheat", inp, {}, inp.train_tracks[:5])
    finally:
        HEADS.unregister("cheat")


def test_a_tag_the_head_knows_nothing_of_scores_every_track_alike():
    side = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)   # the unseen tag's attribute is new
    inp = HeadInput(side, np.array([True, True, False]), side[:, :2].copy(), np.zeros((1, 2)), np.zeros((1, 2), bool))
    scores = apply_head("ridge", inp, head_params("ridge"), np.eye(2, dtype=np.float32))(np.eye(2, dtype=np.float32))
    assert np.isfinite(scores).all() and (scores[:, 2] == 0).all()
