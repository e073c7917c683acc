"""What causal tracing and the knowledge-neuron search take: frozen, validated dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InvalidInputError

KINDS = ("resid", "mlp", "attn")
# The token positions the paper averages over (its Figure 2 rows).
CATEGORIES = ("first_subject", "middle_subject", "last_subject", "first_subsequent", "further", "last")
# sigma is measured over these subjects' token embeddings (a fixed list, so sigma is one number per model).
NOISE_SUBJECTS = (
    "Eiffel Tower", "Michael Jordan", "Barack Obama", "Albert Einstein", "Microsoft", "Toyota", "Nintendo",
    "the Amazon River", "Mount Everest", "Leonardo da Vinci", "William Shakespeare", "Lionel Messi",
    "the Great Wall of China", "Beethoven", "Apple", "Google", "the Colosseum", "Big Ben", "Tokyo",
    "Pablo Picasso", "Serena Williams", "Isaac Newton", "the Statue of Liberty", "Charles Darwin",
    "Coca-Cola", "Sony", "the Nile", "Mozart", "Napoleon Bonaparte", "Marie Curie", "Roger Federer",
    "the Taj Mahal", "Angela Merkel", "Vincent van Gogh", "IBM", "Samsung", "the Louvre", "Tom Brady",
    "Sydney Opera House", "Wolfgang Amadeus Mozart", "Cristiano Ronaldo", "Volkswagen",
)

# params field -> the `interp trace` / `interp neurons` option that sets it (the command a result reproduces)
TRACE_FLAGS = {"prompt": "--prompt", "subject": "--subject", "target": "--target", "sample": "--sample",
               "samples": "--samples",
               "noise": "--noise", "window": "--window", "seed": "--seed", "kinds": "--kinds",
               "batch_size": "--batch-size"}
NEURON_FLAGS = {"prompt": "--prompt", "subject": "--subject", "target": "--target", "paraphrases": "--paraphrase*",
                "steps": "--steps", "threshold": "--threshold", "random_seeds": "--random-seeds", "seed": "--seed",
                "heldout": "--heldout", "max_prompts": "--max-prompts", "relations": "--relations",
                "per_relation": "--per-relation", "tune_per_relation": "--tune-per-relation",
                "n_unrelated": "--unrelated"}


@dataclass(frozen=True)
class TraceParams:
    """What to trace and how. ``facts`` (FactRecords) are averaged over, traced at the key tokens only;
    the single prompt/subject/target is traced at every token (the heatmaps)."""

    prompt: str = "The {} is located in the city of"
    subject: str = "Eiffel Tower"
    target: str | None = None  # None: the model's own greedy answer
    facts: tuple = ()  # FactRecord, ...
    sample: int | None = None  # trace n of the facts drawn at random (seed), in file order; sigma from all of them
    samples: int = 10
    noise: float = 3.0  # noise std in units of sigma
    window: int = 10
    seed: int = 0
    sigma: float | None = None  # None: measured over the fact set's subjects (NOISE_SUBJECTS without one)
    known_only: bool = True  # average only facts whose greedy answer is the true one (as the reference)
    kinds: tuple[str, ...] = KINDS
    batch_size: int = 128  # rows per forward

    def __post_init__(self) -> None:
        if self.sample is not None and self.sample < 1:
            raise InvalidInputError(f"sample must be at least 1, got {self.sample}.")
        if self.samples < 1:
            raise InvalidInputError(f"samples must be at least 1, got {self.samples}.")
        if self.noise < 0:
            raise InvalidInputError(f"noise must be non-negative, got {self.noise}.")
        if self.window < 1:
            raise InvalidInputError(f"window must be at least 1, got {self.window}.")
        if self.batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {self.batch_size}.")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise InvalidInputError(f"kinds must be chosen from {', '.join(KINDS)}; got {self.kinds}.")


# A few facts both models know, unrelated to each other: the "unrelated facts" control without a fact set.
DEFAULT_UNRELATED = (
    ("Michael Jordan plays the sport of", "basketball"),
    ("The capital of Japan is", "Tokyo"),
    ("Water is made of hydrogen and", "oxygen"),
    ("The Great Wall is located in", "China"),
    ("Apple was founded by Steve", "Jobs"),
    ("The Amazon rainforest is located in South", "America"),
    ("The mother tongue of Vladimir Putin is", "Russian"),
    ("The Statue of Liberty is in New York", "City"),
)


# Other wordings of the default fact (the Eiffel Tower's city): a unit must be shared by >= 3 prompts.
DEFAULT_PARAPHRASES = ("The Eiffel Tower is in the city of", "The Eiffel Tower, a landmark in the city of",
                       "Where is the Eiffel Tower? It is in the city of")


@dataclass(frozen=True)
class NeuronParams:
    prompt: str = "The {} is located in the city of"
    subject: str = "Eiffel Tower"
    target: str | None = None  # None: the model's greedy answer
    paraphrases: tuple[str, ...] = DEFAULT_PARAPHRASES  # full prompts for the same fact (the default fact's)
    facts: tuple = ()  # FactRecords: when given, each fact is analysed with its own paraphrases
    steps: int = 20
    threshold: float = 0.2  # fraction of the prompt's largest attribution
    p_start: float = 0.7  # a unit must be kept in >= max(p * n, min_prompts) of a fact's n prompts
    p_step: float = 0.05
    min_neurons: int = 2  # p is tuned per relation until its facts hold min..max neurons on average
    max_neurons: int = 5
    max_rounds: int = 6  # rounds of tuning p (the reference's loop)
    min_prompts: int = 3  # the reference's least count of prompts sharing a unit
    max_prompts: int = 8  # prompts per fact: its own, then its relation's templates (the paper averages 8.63)
    heldout: int = 0  # of those, prompts drawn (seeded) per fact and kept out of the search: the held-out control
    tune_facts: tuple = ()  # FactRecords on which p is tuned per relation (a tuning part); (): tuned on `facts`
    relations: tuple[str, ...] = ()  # only the facts (and tune_facts) of these relations; (): all
    per_relation: int | None = None  # facts drawn at random (seed) per relation from facts (None: all)
    tune_per_relation: int | None = None  # the same for tune_facts (None: all)
    batch_rows: int = 200  # integrated-gradient rows (prompts x steps) per forward pass
    random_seeds: int = 5
    n_unrelated: int = 8  # unrelated facts per fact (from the fact set, another relation)
    unrelated: tuple[tuple[str, str], ...] = DEFAULT_UNRELATED  # (prompt, target) for the single prompt
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InvalidInputError(f"steps must be at least 1, got {self.steps}.")
        if not 0 < self.threshold <= 1:
            raise InvalidInputError(f"threshold must be in (0, 1], got {self.threshold}.")
        if not 1 <= self.min_neurons <= self.max_neurons:
            raise InvalidInputError("need 1 <= min_neurons <= max_neurons.")
        if not 0 < self.p_start <= 1 or not 0 < self.p_step < 1:
            raise InvalidInputError("p_start must be in (0, 1] and p_step in (0, 1).")
        if self.max_rounds < 1 or self.min_prompts < 1:
            raise InvalidInputError("max_rounds and min_prompts must be at least 1.")
        if self.max_prompts < self.min_prompts:
            raise InvalidInputError(f"max_prompts ({self.max_prompts}) must be at least min_prompts "
                                    f"({self.min_prompts}).")
        if not self.facts and 1 + len(self.paraphrases) < self.min_prompts:
            raise InvalidInputError(
                f"Knowledge neurons need at least {self.min_prompts} prompts for the fact (a unit must be shared by "
                f"{self.min_prompts} of them); give more --paraphrase options, or use --facts.")
        if self.random_seeds < 1:
            raise InvalidInputError(f"random_seeds must be at least 1, got {self.random_seeds}.")
        if self.heldout < 0 or self.max_prompts - self.heldout < self.min_prompts:
            raise InvalidInputError(f"--heldout {self.heldout} must leave at least {self.min_prompts} of the "
                                    f"{self.max_prompts} prompts per fact for the search.")
        for name in ("per_relation", "tune_per_relation"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.batch_rows < 1:
            raise InvalidInputError(f"batch_rows must be at least 1, got {self.batch_rows}.")
