"""agi/channel.py: how many variables go into one ARRAY command."""

from __future__ import annotations

import random
from itertools import pairwise

from agi.channel import _batches, array_assignment
from agi.protocol import MAX_COMMAND, command


def test_batches_fit_the_line_buffer_and_keep_every_value_in_order() -> None:
    rnd = random.Random(7)
    alphabet = "abc,xyz 0123 菏泽市山东省\t"
    for _ in range(100):
        values = {f"__HL_V{i}": "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 900)))
                  for i in range(rnd.randint(1, 25))}
        batches = _batches(values)
        merged = {k: v for b in batches for k, v in b.items()}
        assert list(merged.items()) == list(values.items())
        for b in batches:
            assert len(command("SET VARIABLE", *array_assignment(b))) <= MAX_COMMAND - 64 or len(b) == 1
        # greedy: a batch could not have taken the next batch's first value
        for b, nxt in pairwise(batches):
            first = next(iter(nxt.items()))
            grown = {**b, first[0]: first[1]}
            assert len(command("SET VARIABLE", *array_assignment(grown))) > MAX_COMMAND - 64
