"""The generated ticket corpus: deterministic, balanced by the priors, messy like real tickets."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from service.models.datasets import ticket_dataset
from service.models.ticket_corpus import (
    CATEGORIES,
    CATEGORY_PRIORS,
    CLOSINGS,
    CONTEXT,
    GREETINGS,
    SLOTS,
    TEMPLATES,
    VAGUE_TICKETS,
    generate_corpus,
    ticket_text,
)

WORD = re.compile(r"[a-z]+")


def _vocabulary() -> set[str]:
    texts = [*VAGUE_TICKETS, *GREETINGS, *CONTEXT, *CLOSINGS]
    texts += [t for templates in TEMPLATES.values() for t in templates]
    texts += [v for values in SLOTS.values() for v in values]
    texts += ["example com usd"]  # the generated e-mail domain and currency suffix
    return {w for text in texts for w in WORD.findall(text.lower())}


def test_the_same_seed_gives_the_same_tickets_and_snapshot_id():
    assert generate_corpus(300, seed=5) == generate_corpus(300, seed=5)
    assert ticket_dataset(400, seed=5).snapshot_id == ticket_dataset(400, seed=5).snapshot_id


def test_another_seed_gives_other_tickets_and_another_snapshot_id():
    first, second = generate_corpus(200, seed=5), generate_corpus(200, seed=6)
    assert [t.text for t in first] != [t.text for t in second]
    assert ticket_dataset(400, seed=5).snapshot_id != ticket_dataset(400, seed=6).snapshot_id


def test_categories_follow_their_priors():
    counts = Counter(t.category for t in generate_corpus(4000, seed=11))
    assert set(counts) == set(CATEGORIES)
    for category, prior in CATEGORY_PRIORS.items():
        assert counts[category] / 4000 == pytest.approx(prior, abs=0.025), category


def test_tickets_vary_in_length_wording_case_and_spelling():
    tickets = generate_corpus(3000, seed=12)
    texts = [t.text for t in tickets]
    lengths = sorted(len(text) for text in texts)
    assert lengths[0] < 40
    assert lengths[-1] > 250
    assert len(set(texts)) / len(texts) > 0.97
    assert sum(text == text.lower() for text in texts) / len(texts) > 0.08
    vocabulary = _vocabulary()
    misspelled = [t for t in texts if any(w not in vocabulary for w in WORD.findall(t.lower()))]
    assert 0.05 < len(misspelled) / len(texts) < 0.6


def test_a_single_ticket_can_be_asked_for_by_category():
    rng = random.Random(3)
    assert ticket_text(rng, "shipping") != ticket_text(rng, "shipping")
    assert isinstance(ticket_text(rng, None), str)
    with pytest.raises(ValueError, match="unknown ticket category 'refunds'"):
        ticket_text(rng, "refunds")
