"""Cumulative pairwise voting and (chosen, rejected) selection on hand-made vote tables."""
from __future__ import annotations

import json

import pytest

from t2i_training.judges.protocol import Verdict
from t2i_training.preferences import (
    VoteTable,
    cumulative_scores,
    ordered_pairs,
    ranked_pairs,
    select_pair,
)


def test_ordered_pairs_are_all_distinct_ordered_pairs():
    pairs = ordered_pairs(4)
    assert len(pairs) == 4 * 3 == len(set(pairs))
    assert all(i != j for i, j in pairs)
    assert (0, 3) in pairs and (3, 0) in pairs
    assert ordered_pairs(1) == [] and ordered_pairs(0) == []


def test_vote_adds_to_first_and_subtracts_from_second():
    assert cumulative_scores(3, {(0, 1): 1}) == [1, -1, 0]
    assert cumulative_scores(3, {(2, 0): -1}) == [1, 0, -1]  # B (=0) won against A (=2)
    assert cumulative_scores(3, {(0, 1): 0}) == [0, 0, 0]


def test_clear_winner_and_loser_are_selected():
    # Candidate 2 beats everyone in both slots, candidate 0 loses to everyone.
    rank = {0: 0, 1: 1, 2: 2}
    votes = {(i, j): (1 if rank[i] > rank[j] else -1) for i, j in ordered_pairs(3)}
    scores = cumulative_scores(3, votes)
    assert scores == [-4, 0, 4]  # a candidate winning every ordered pair scores 2(n-1)
    assert sum(scores) == 0
    assert select_pair(scores) == (2, 0)


def test_all_ties_are_skipped():
    votes = {p: 0 for p in ordered_pairs(4)}
    assert select_pair(cumulative_scores(4, votes)) is None


def test_shared_max_or_min_is_skipped():
    assert select_pair([5, -3, -2]) == (0, 1)
    assert select_pair([7]) is None and select_pair([]) is None


def test_bad_pairs_and_votes_are_rejected():
    with pytest.raises(ValueError):
        cumulative_scores(2, {(0, 0): 1})
    with pytest.raises(ValueError):
        cumulative_scores(2, {(0, 2): 1})
    with pytest.raises(ValueError):
        cumulative_scores(2, {(0, 1): 2})


def test_scores_sum_over_chosen_dimensions_only():
    table = VoteTable(3)
    table.add("quality", 0, 1, Verdict(1))  # quality: 0 > 1
    table.add("aesthetics", 2, 1, Verdict(1))  # aesthetics: 2 > 1
    table.add("aesthetics", 2, 0, Verdict(1))  # aesthetics: 2 > 0
    assert table.scores(["quality"]) == [1, -1, 0]
    assert table.scores(["aesthetics"]) == [-1, -1, 2]
    assert table.scores(["quality", "aesthetics"]) == [0, -2, 2]
    assert select_pair(table.scores(["quality", "aesthetics"])) == (2, 1)
    assert table.scores(["physical_alignment"]) == [0, 0, 0]  # no votes: adds nothing


def test_shared_top_or_bottom_is_kept_with_a_seeded_draw():
    # Two equally correct rewrites and one wrong one: still a real preference, not skipped.
    draws = {select_pair([3, 3, -6], seed=s) for s in range(20)}
    assert draws == {(0, 2), (1, 2)}
    assert select_pair([3, 3, -6], seed=4) == select_pair([3, 3, -6], seed=4)  # deterministic
    draws = {select_pair([5, -2, -2, -1], seed=s) for s in range(20)}
    assert draws == {(0, 1), (0, 2)}
    assert select_pair([1, 1, 1, 1], seed=3) is None  # no preference at all


def test_unparsed_verdicts_are_counted_and_stored_as_ties():
    table = VoteTable(2)
    table.add("quality", 0, 1, Verdict(0, parsed=False, raw="???"))
    table.add("quality", 1, 0, Verdict(1))
    table.add("aesthetics", 0, 1, Verdict(0, parsed=False, raw=""))
    assert table.unparsed == 2
    assert table.votes["quality"][(0, 1)] == 0
    assert table.scores(["quality"]) == [-1, 1]


def test_vote_table_json_round_trip():
    table = VoteTable(3)
    for i, j in ordered_pairs(3):
        table.add("general_alignment", i, j, Verdict(1 if i < j else -1))
    table.add("quality", 1, 2, Verdict(0, parsed=False))
    restored = VoteTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert restored == table
    assert restored.votes["general_alignment"][(0, 2)] == 1
    assert restored.scores(["general_alignment"]) == [4, 0, -4]
    assert restored.unparsed == 1


def test_vote_table_rejects_pairs_outside_the_candidates():
    with pytest.raises(ValueError):
        VoteTable(2).add("quality", 0, 2, Verdict(1))
    with pytest.raises(ValueError):
        VoteTable.from_dict({"n": 2, "votes": {"quality": {"0,5": 1}}})


def test_shorter_tie_break_picks_the_shortest_best_and_the_longest_worst():
    # Candidates 0 and 1 tie at the top, 2 and 3 at the bottom; lengths decide, not the seed.
    scores, lengths = [4, 4, -4, -4], [12, 7, 9, 30]
    assert {select_pair(scores, seed=s, lengths=lengths, tie_break="shorter")
            for s in range(20)} == {(1, 3)}
    # Equal lengths among the tied: the seeded draw still decides.
    draws = {select_pair([3, 3, -6], seed=s, lengths=[5, 5, 9], tie_break="shorter")
             for s in range(20)}
    assert draws == {(0, 2), (1, 2)}
    # A strict preference is never overridden by length.
    assert select_pair([5, -5], lengths=[40, 3], tie_break="shorter") == (0, 1)


def test_tie_break_is_checked():
    with pytest.raises(ValueError, match="tie_break"):
        select_pair([1, -1], tie_break="longest")
    with pytest.raises(ValueError, match="one length per candidate"):
        select_pair([1, -1], tie_break="shorter")


def test_ranked_pairs_start_with_the_paper_pair_and_cover_every_best_worst_combination():
    scores = [3, 3, -2, -2, -2]
    for seed in range(10):
        ranked = ranked_pairs(scores, seed)
        assert ranked[0] == select_pair(scores, seed)  # limit 1 trains exactly as before
        assert sorted(ranked) == [(b, w) for b in (0, 1) for w in (2, 3, 4)]
        assert ranked == ranked_pairs(scores, seed)  # deterministic
    assert len({tuple(ranked_pairs(scores, s)[1:]) for s in range(10)}) > 1  # order is drawn
    assert ranked_pairs([1, 1, 1]) == [] and ranked_pairs([4]) == []
    # "shorter" narrows first: shortest of the tied best, longest of the tied worst
    assert ranked_pairs(scores, 0, lengths=[5, 3, 9, 9, 4], tie_break="shorter") in (
        [(1, 2), (1, 3)], [(1, 3), (1, 2)])
