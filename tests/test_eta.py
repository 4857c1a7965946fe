"""The time-left estimate of a layer-by-layer pass (edgellama/eta.py)."""
from edgellama.eta import LayerClock


def clock_over(durations):
    """A LayerClock whose layer i took durations[i] seconds, and the lines it gave at each start."""
    now = [0.0]
    clock = LayerClock(len(durations), clock=lambda: now[0])
    lines = []
    for i, seconds in enumerate(durations):
        lines.append(clock.start(i))
        now[0] += seconds
    return clock, lines


def test_layers_growing_linearly_are_extrapolated_exactly():
    durations = [90.0] + [60.0 + 6.0 * i for i in range(1, 32)]  # layer 0 pays one-off costs: left out
    clock, lines = clock_over(durations)
    for i in range(6, 32):
        assert abs(clock.seconds_left(i) - sum(durations[i:])) < 1e-6
    assert lines[:6] == [f"quantizing layer {i} of 32" for i in range(6)]  # too few layers timed yet
    assert lines[6] == f"quantizing layer 6 of 32 (~{round(sum(durations[6:]) / 60)} min left)"


def test_noise_that_looks_like_a_speed_up_is_not_extrapolated_as_one():
    clock, _ = clock_over([50.0, 80.0, 70.0, 60.0, 65.0, 55.0, 62.0])
    assert clock.seconds_left(6) == (80 + 70 + 60 + 65 + 55) / 5  # the mean per layer, no negative slope


def test_long_passes_read_in_hours():
    _, lines = clock_over([600.0] * 20)
    assert lines[6].endswith("(~2.3 h left)")
