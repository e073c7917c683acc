"""A tiny random model with a character tokenizer, importable by Ray workers (they load it by reference)."""

from __future__ import annotations

from tests.tiny import CHARS, char_tokenizer, tiny_char_model  # noqa: F401 (workers import them from here)


def fact(i: int, subject: str = "Eiffel Tower", prompt: str = "The {} is in"):
    from interp.analysis.facts.records import FactRecord

    return FactRecord(i, prompt, subject, "Paris", "Rome", f"P{i % 2}",
                      paraphrase_prompts=(f"{subject} is in",), neighborhood_prompts=("The Louvre is in",),
                      generation_prompts=(f"The {subject} is",))


FACTS = (fact(0), fact(1, "Big Ben", "The {} stands in"), fact(2, "Colosseum", "{} is located in"),
         fact(3, "Tokyo Tower"), fact(4, "Golden Gate", "{} is a bridge in"))
