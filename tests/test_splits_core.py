import numpy as np
import pandas as pd
import pytest

from zslkit import ParamError
from zslkit.data.splits import split_tags, subset_shares, track_subsets


def tags_frame(sizes):
    return pd.DataFrame([{"tag": f"{g}{i}", "group": g} for g, n in sizes.items() for i in range(n)])


@pytest.mark.parametrize("n", [5, 10, 57, 100])
def test_split_sizes_follow_the_paper(n):
    seen, unseen = split_tags(tags_frame({"g": n}), 0.8, seed=1, stratify="none")
    assert len(seen) == int(np.floor(0.8 * n)) and len(seen) + len(unseen) == n
    assert not set(seen) & set(unseen)


def test_stratified_split_allocates_by_group_and_is_seeded():
    tags = tags_frame({"instrument": 30, "form": 10, "mode": 2})
    seen, unseen = split_tags(tags, 0.8, seed=5)
    groups = tags.set_index("tag").group
    per_group = groups[unseen].value_counts().to_dict()
    assert len(unseen) == 42 - 33  # floor(0.8 * 42) seen
    for group, size in {"instrument": 30, "form": 10, "mode": 2}.items():
        quota = 9 * size / 42  # Hamilton: each group gets floor or ceil of its quota
        assert per_group.get(group, 0) in (np.floor(quota), np.ceil(quota))
    assert split_tags(tags, 0.8, seed=5) == (seen, unseen)
    assert split_tags(tags, 0.8, seed=6) != (seen, unseen)
    with pytest.raises(ParamError, match="split.stratify"):
        split_tags(tags, 0.8, stratify="genre")


def test_track_subsets_follow_the_definitions():
    #            X0 X1 Y0
    labels = np.array([[1, 0, 0],   # A
                       [1, 0, 1],   # B
                       [0, 0, 1],   # C
                       [0, 0, 0],   # untagged
                       [1, 1, 0],   # positive for every X tag: dropped, as in the original
                       [0, 1, 0]], dtype=bool)
    sub = track_subsets(labels, np.array([True, True, False]))
    assert sub["A"].tolist() == [0, 5] and sub["B"].tolist() == [1] and sub["C"].tolist() == [2]
    assert sub["untagged"].tolist() == [3] and sub["all_seen"].tolist() == [4]
    shares = subset_shares(labels, ["x0", "x1", "y0"], ["y0"])
    assert (shares["A"], shares["B"], shares["C"], shares["left_out"]) == (2, 1, 1, 2)
    assert shares["share_A"] == pytest.approx(0.5)
