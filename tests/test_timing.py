"""Throughput helpers: interleaved rounds, medians."""

import time

from helpers.analysis.timing import interleaved_items_per_second, items_per_second


def test_items_per_second_is_items_over_the_median_time():
    rate = items_per_second(lambda: time.sleep(0.02), n_items=10, repeats=3, warmup=0)
    assert 10 / 0.05 < rate < 10 / 0.02 * 1.001


def test_interleaved_runs_take_turns_and_rank_by_speed():
    calls = []

    def runner(name, seconds):
        def run():
            calls.append(name)
            time.sleep(seconds)

        return run

    rates = interleaved_items_per_second(
        {"fast": runner("fast", 0.005), "slow": runner("slow", 0.03)}, n_items=6, rounds=3, warmup=1
    )
    assert calls == ["fast", "slow"] * 4  # one warm-up round, then three timed rounds, in turns
    assert rates["fast"] > 2 * rates["slow"]
    assert rates["slow"] < 6 / 0.03  # items over seconds: at most 200 items/s for 30 ms runs


def test_a_slow_spell_in_one_round_does_not_decide():
    # The second configuration is hit by one very slow call; the median ignores it.
    delays = {"a": iter([0.01, 0.01, 0.01]), "b": iter([0.005, 0.2, 0.005])}
    rates = interleaved_items_per_second(
        {name: (lambda it=it: time.sleep(next(it))) for name, it in delays.items()},
        n_items=1,
        rounds=3,
        warmup=0,
    )
    assert rates["b"] > rates["a"]
