"""The built-in *sample suite*: small synthetic datasets, generated deterministically.

`generate(spec, split)` returns rows in the schema of any task plugin (built from the
`TaskSpec`'s field names, not from a list of known tasks), so the whole harness -- loaders,
adapters, training, evaluation, leaderboards -- runs offline, in tests and in demos.

The data has patterns a small model learns quickly, but not perfectly:

* classification: 8-25 word sentences in which 1-2 *cue words* of the label hide among
  distractor words; ~8% of rows carry the cue words of another label (label noise), and
  the label distribution is mildly unbalanced (first label 45%).
* extractive_qa: a context of 3-6 templated facts about invented entities, a question
  about one of them and the exact answer span with its character offset.
* closed_book_qa: questions about a fixed world of invented facts, derived from the task
  name only, so every fact asked in an evaluation split is also taught by the train split.

Every random choice comes from a `random.Random` seeded with a sha256 of
(task name, split, size, seed): the output is identical across runs, processes and
machines, and never depends on Python's salted `hash()` or on set order.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import DataError
from .tasks import TaskSpec, get_field

TRAIN_SIZE = 800
EVAL_SIZE = 300

LABEL_NOISE = 0.08           # share of classification rows whose cue words belong to another label
FIRST_LABEL_SHARE = 0.45     # the other labels split the rest evenly
MIN_WORDS, MAX_WORDS = 8, 25
WORLD_SIZE = 200             # closed-book facts; a train split of >= WORLD_SIZE rows covers them all
UNICODE_SHARE = 0.15         # extractive-QA rows that use non-ASCII names


# ---------------------------------------------------------------------------------------
# public API
def splits(spec: TaskSpec) -> list[str]:
    """The task's train split (if it has one) followed by its evaluation splits."""
    out = [spec.dataset.train] if spec.dataset.train else []
    out.extend(es.split for es in spec.dataset.eval if es.split not in out)
    return out


def generate(spec: TaskSpec, split: str, size: int | None = None, seed: int = 0) -> list[dict]:
    """Synthetic rows of `split` in `spec`'s schema: TRAIN_SIZE rows for train, EVAL_SIZE otherwise."""
    valid = splits(spec)
    if split not in valid:
        raise DataError(f"sample data for task '{spec.name}' has no split '{split}'; valid splits: {', '.join(valid)}")
    is_train = split == spec.dataset.train
    if size is None:
        size = TRAIN_SIZE if is_train else EVAL_SIZE
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise DataError(f"sample data for task '{spec.name}': size must be a non-negative integer, got {size!r}")
    rng = _rng("rows", spec.name, split, size, seed)
    if spec.kind == "classification":
        rows = _classification(spec, size, seed, rng, is_train)
    elif spec.kind == "extractive_qa":
        rows = _extractive(spec, size, rng, is_train)
    elif spec.kind == "closed_book_qa":
        rows = _closed_book(spec, size, rng, is_train)
    else:  # parse_task only admits the kinds above
        raise DataError(f"sample data for task '{spec.name}': unsupported task kind '{spec.kind}'")
    if spec.id:
        integer = spec.id.rsplit(".", 1)[-1] == "idx"
        for i, row in enumerate(rows):
            _set_field(row, spec.id, i if integer else f"sample-{split}-{i:06d}")
    return rows


# ---------------------------------------------------------------------------------------
# plumbing
class _Rng(random.Random):
    """Mersenne Twister with every draw derived from `random()` by code written here.

    The stdlib's `choice`/`sample`/`shuffle` are fine but slow-ish and formally free to
    change between Python versions; these keep the sample suite identical everywhere and
    fast enough to generate every split of every built-in task in a fraction of a second.
    """

    def _below(self, n: int) -> int:
        return int(self.random() * n)

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if stop is None:
            start, stop = 0, start
        return start + step * self._below((stop - start + step - 1) // step)

    def randint(self, a: int, b: int) -> int:
        return a + self._below(b - a + 1)

    def choice(self, seq: Sequence[Any]) -> Any:  # type: ignore[override]
        return seq[self._below(len(seq))]

    def choices(self, seq: Sequence[Any], k: int = 1) -> list:  # type: ignore[override]
        n, rand = len(seq), self.random
        return [seq[int(rand() * n)] for _ in range(k)]

    def shuffle(self, items: list) -> None:  # type: ignore[override]
        for i in range(len(items) - 1, 0, -1):
            j = self._below(i + 1)
            items[i], items[j] = items[j], items[i]

    def sample(self, population: Sequence[Any], k: int) -> list:  # type: ignore[override]
        pool = list(population)
        for i in range(k):
            j = i + self._below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


def _rng(*parts: Any) -> _Rng:
    """A generator seeded from a sha256 of `parts`: never Python's salted hash()."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode("utf-8")).digest()
    return _Rng(int.from_bytes(digest[:16], "big"))


def _set_field(row: dict, path: str, value: Any) -> None:
    """Write a dotted field ('answers.text'), creating the nested dicts on the way."""
    parts = path.split(".")
    node = row
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def _filler(rng: random.Random, low: int = 6, high: int = 14) -> str:
    return " ".join(rng.choice(_DISTRACTORS) for _ in range(rng.randint(low, high)))


def _fill_inputs(row: dict, spec: TaskSpec, used: Sequence[str], rng: random.Random) -> None:
    """Every declared input that the pattern did not use gets filler text."""
    for name in spec.inputs:
        if name not in used:
            _set_field(row, name, _filler(rng))


# ---------------------------------------------------------------------------------------
# word lists (plain ASCII)
_BASE_WORDS = """
the a an this that it its they we he she his her their our one two three
about across after along among around at before behind below beside between by during for from
in inside into near of off on onto over past through to toward under upon with within
and or but so yet while because though when where then there here now often still just only
also ever soon very quite rather too more most less some many much few every each both
house garden window river city street train letter morning evening winter summer autumn spring
teacher student doctor farmer painter writer friend family market village table kitchen office
station bridge road forest mountain island ocean harbor school library museum theater chair door
wall roof floor field valley lake hill coast shore boat ship car bus bicycle lamp clock book
paper pencil map coat hat shoe bag box basket bottle cup plate bread apple cheese soup tea coffee
water stone wood glass metal cloth song picture photo story letter message report plan idea
question answer reason result number name week month year hour minute day night weekend
walks carries opens finds keeps brings leaves meets watches follows builds paints reads writes
sings holds turns moves starts reaches visits shows tells gives takes makes calls asks waits
cooks cleans sells buys rides climbs crosses drives sits stands sleeps listens speaks learns
old new small large early late busy long short wooden northern southern eastern western
local public young tall wide deep flat round square simple plain usual common whole half
""".split()

_FILM_WORDS = """
film movie plot story cast director script scenes performance actors ending soundtrack camera
dialogue characters screenplay sequel picture drama comedy thriller audience studio premiere
""".split()

# Task-flavoured cue words, by label name. A spec's labels must get disjoint cue sets; a word
# already taken by another label of the same task is skipped (see _cue_words).
_LEXICON: dict[str, list[str]] = {
    "negative": "dull tedious boring clumsy lifeless bland forgettable tiresome shallow pointless".split(),
    "positive": "wonderful moving charming delightful gripping witty brilliant heartfelt superb engaging".split(),
    "entailment": "indeed certainly definitely surely exactly likewise clearly truly".split(),
    "neutral": "perhaps maybe possibly probably sometimes somewhat reportedly apparently".split(),
    "contradiction": "never nobody nothing none neither nowhere cannot false".split(),
    "not_entailment": "never nobody nothing unlikely doubtful nowhere cannot false".split(),
    "duplicate": "same identical equivalent similar alike matching synonymous interchangeable".split(),
    "not_duplicate": "different unrelated separate distinct opposite contrasting dissimilar another".split(),
    "not_equivalent": "different unrelated separate distinct opposite contrasting dissimilar another".split(),
    "equivalent": "same identical equivalent similar alike matching synonymous interchangeable".split(),
    "acceptable": "grammatical fluent proper correct natural tidy regular standard".split(),
    "unacceptable": "garbled broken jumbled scrambled wrong awkward mangled tangled".split(),
}

# Cue words for labels without a flavoured entry, handed out in a per-task shuffled order.
_GENERIC_CUES = """
amber bright crisp dusty eager fancy gentle hollow icy jolly keen lively mellow narrow odd
polite rapid rusty silent sturdy tidy urban vast warm zesty brisk calm damp frosty glossy hasty
humble lofty murky nimble plump proud rough shiny sleepy smoky snowy solid spicy stormy sunny
swift tender thorny velvet windy woolly breezy cloudy dreamy fluffy foggy grumpy hazy misty
muddy noisy rainy sandy shaggy silky soggy starry sticky
""".split()

_QUESTION_STARTS = "how what why which where when can should is does".split()

_ALL_CUES = {w for words in _LEXICON.values() for w in words} | set(_GENERIC_CUES)


def _zipf(words: Sequence[str]) -> list[str]:
    """Repeat words by rank (~1/rank, like natural text) so uniform picks from the list are Zipfian."""
    words = [w for w in dict.fromkeys(words) if w not in _ALL_CUES]
    return [w for rank, w in enumerate(words, 1) for _ in range(max(1, round(60 / rank)))]


_DISTRACTORS = _zipf(_BASE_WORDS)
_FILM_DISTRACTORS = _zipf(_BASE_WORDS[:20] + _FILM_WORDS + _BASE_WORDS[20:])

_SYL_ON = "b c d f g h k l m n p r s t v z b d l m r t br dr gr st tr".split()
_SYL_NU = "a e i o u a e o ai ou".split()
_SYL_MID = ["", "", "", "n", "r", "l"]
_SYL_END = ["", "n", "r", "l", "s", "m", "th", "nd", "x"]


def _pseudo_word(rng: random.Random, syllables: int) -> str:
    """An English-looking invented word ('dorvan', 'telisa'), plain ASCII."""
    out = []
    for i in range(syllables):
        coda = _SYL_END if i == syllables - 1 else _SYL_MID
        n = int(rng.random() * len(_SYL_ON) * len(_SYL_NU) * len(coda))  # one draw per syllable
        n, c = divmod(n, len(coda))
        o, v = divmod(n, len(_SYL_NU))
        out.append(_SYL_ON[o] + _SYL_NU[v] + coda[c])
    return "".join(out)


# ---------------------------------------------------------------------------------------
# classification
def _norm_label(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _cue_words(spec: TaskSpec) -> list[list[str]]:
    """Disjoint cue-word lists, one per label; depends on the task name and labels only."""
    rng = _rng("cues", spec.name, *spec.labels)
    per_label = 6 if len(spec.labels) <= 8 else 4
    taken: set[str] = set()
    cues: list[list[str]] = [[] for _ in spec.labels]
    for i, label in enumerate(spec.labels):
        for word in _LEXICON.get(_norm_label(label), []):
            if word not in taken and len(cues[i]) < per_label:
                cues[i].append(word)
                taken.add(word)
    pool = [w for w in _GENERIC_CUES if w not in taken]
    rng.shuffle(pool)
    distractors = set(_FILM_DISTRACTORS)
    for i in range(len(spec.labels)):
        while len(cues[i]) < 3 or (len(cues[i]) < per_label and not _LEXICON.get(_norm_label(spec.labels[i]))):
            if pool:
                word = pool.pop()
            else:  # many labels: invent more English-looking words
                word = _pseudo_word(rng, rng.randint(2, 3))
                if word in taken or word in distractors:
                    continue
            cues[i].append(word)
            taken.add(word)
    return cues


def _label_sequence(n: int, k: int, rng: random.Random) -> list[int]:
    """Exactly FIRST_LABEL_SHARE of label 0 (rounded), the rest split evenly, shuffled."""
    counts = [round(n * FIRST_LABEL_SHARE)] + [0] * (k - 1)
    rest = n - counts[0]
    for j in range(1, k):
        counts[j] = rest // (k - 1) + (1 if j - 1 < rest % (k - 1) else 0)
    seq = [j for j, c in enumerate(counts) for _ in range(c)]
    rng.shuffle(seq)
    return seq


def _sentence(rng: random.Random, vocab: Sequence[str], length: int, cues: Sequence[str],
              shared: Sequence[str] = (), question: bool = False, cased: bool = False) -> str:
    """`length` words: `shared` words (in order) and distractors, with `cues` at random places."""
    body = length - len(cues) - (1 if question else 0)
    shared = list(shared[: max(0, body)])
    words = rng.choices(vocab, k=body - len(shared))
    if shared:
        slots = sorted(rng.sample(range(body), len(shared)))
        for slot, word in zip(slots, shared):
            words.insert(slot, word)
    for cue in cues:
        words.insert(rng.randrange(len(words) + 1), cue)
    if question:
        return rng.choice(_QUESTION_STARTS).capitalize() + " " + " ".join(words) + "?"
    if cased:
        return words[0].capitalize() + " " + " ".join(words[1:]) + "."
    return " ".join(words)


_TRAIN_TEXTS: dict[tuple, frozenset] = {}


def _train_texts(spec: TaskSpec, seed: int) -> frozenset:
    """Input texts of the default-size train split (memoised: every eval split checks against it)."""
    key = (spec.name, spec.inputs, spec.label, spec.labels, spec.dataset.train, seed)
    if key not in _TRAIN_TEXTS:
        rows = generate(spec, spec.dataset.train, TRAIN_SIZE, seed)
        if len(_TRAIN_TEXTS) > 64:
            _TRAIN_TEXTS.clear()
        _TRAIN_TEXTS[key] = frozenset(tuple(str(get_field(r, f)) for f in spec.inputs[:2]) for r in rows)
    return _TRAIN_TEXTS[key]


def _classification(spec: TaskSpec, size: int, seed: int, rng: random.Random,
                    is_train: bool) -> list[dict]:
    cues = _cue_words(spec)
    k = len(spec.labels)
    film = any(_norm_label(label) in ("negative", "positive") for label in spec.labels)
    vocab = _FILM_DISTRACTORS if film else _DISTRACTORS
    fields = list(spec.inputs[:2])
    pair = len(fields) == 2
    questions = [("question" in f.lower()) for f in fields]
    # An evaluation row never repeats a train row's inputs (checked against the default train split).
    seen: set[tuple[str, ...]] = set()
    if not is_train and spec.dataset.train:
        seen = set(_train_texts(spec, seed))
    rows: list[dict] = []
    for label in _label_sequence(size, k, rng):
        source = label
        if k > 1 and rng.random() < LABEL_NOISE:
            source = rng.choice([j for j in range(k) if j != label])
        while True:
            chosen = rng.sample(cues[source], rng.randint(1, 2))
            if pair:
                side = [rng.randint(0, 1) for _ in chosen]
                first_cues = [c for c, s in zip(chosen, side) if s == 0]
                second_cues = [c for c, s in zip(chosen, side) if s == 1]
                first = _sentence(rng, vocab, rng.randint(MIN_WORDS, MAX_WORDS), first_cues,
                                  question=questions[0], cased=True)
                base = [w for w in re.findall(r"[a-z]+", first.lower()) if w not in first_cues]
                keep = sorted(rng.sample(range(len(base)), max(1, int(len(base) * rng.uniform(0.3, 0.7)))))
                second = _sentence(rng, vocab, rng.randint(MIN_WORDS, min(MAX_WORDS, 18)), second_cues,
                                   shared=[base[i] for i in keep], question=questions[1], cased=True)
                texts: tuple[str, ...] = (first, second)
            else:
                texts = (_sentence(rng, vocab, rng.randint(MIN_WORDS, MAX_WORDS), chosen,
                                   question=questions[0]),)
            if texts not in seen:
                break
        seen.add(texts)
        row: dict = {}
        for name, text in zip(fields, texts):
            _set_field(row, name, text)
        _fill_inputs(row, spec, fields, rng)
        _set_field(row, spec.label, label)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# invented names
_FIRST = "Marta Tobias Elena Hugo Ingrid Felix Nora Casper Lydia Oren Petra Silas Vera Anton Mira Jonas".split()
_FIRST_U = "Zoë Łukasz José Søren Anaïs Björn Noémie François Dagný Jiří Ólöf Renée".split()
_SURNAME_U = "Dvořák Müller Ødegaard Çelik Šimunović Łasiński Núñez Håkansson Gödel Brontë".split()
_PLACE_U = "Łódra Ærøvik Mühlbach Østervik Čelin Sãoreno Göran Ñorva Île-Vaud Kraków-Dolne".split()
_LANG_SUFFIX = ["ish", "ese", "ian", "ic"]
_PLACE_SUFFIX = ["ia", "and", "avia", "eth", "ora", "ium", "mark", "ost"]
_TITLE_ADJ = "Silver Hidden Burning Quiet Broken Golden Last Distant Crimson Paper Iron Winter".split()
_TITLE_NOUN = "Lantern Garden Harbor Mirror Orchard Tower Letter River Clock Compass Crown Meadow".split()


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


class _Names:
    """Unique invented names for one row (extractive QA) or one world (closed-book QA)."""

    def __init__(self, rng: random.Random, unicode: bool = False):
        self.rng = rng
        self.unicode = unicode
        self.used: set[str] = set()

    def _unique(self, make) -> str:
        for _ in range(50):
            name = make()
            if name not in self.used:
                break
        else:  # practically unreachable: disambiguate deterministically
            name = f"{name} {len(self.used)}"
        self.used.add(name)
        return name

    def word(self, syl: tuple[int, int] = (2, 3)) -> str:
        return _cap(_pseudo_word(self.rng, self.rng.randint(*syl)))

    def person(self) -> str:
        r = self.rng

        def make() -> str:
            if self.unicode and r.random() < 0.6:
                return f"{r.choice(_FIRST_U)} {r.choice(_SURNAME_U + [self.word()])}"
            return f"{r.choice(_FIRST)} {self.word((2, 2))}"
        return self._unique(make)

    def place(self) -> str:
        return self._place_like(lambda: self.word((1, 2)) + self.rng.choice(_PLACE_SUFFIX))

    def city(self) -> str:
        return self._place_like(lambda: self.word((2, 2)))

    def _place_like(self, plain: Callable[[], str]) -> str:
        """A unique place name: a real non-ASCII one half the time in unicode mode, else `plain()`."""
        r = self.rng

        def make() -> str:
            if self.unicode and r.random() < 0.5:
                return r.choice(_PLACE_U)
            return plain()
        return self._unique(make)

    def language(self) -> str:
        return self._unique(lambda: self.word((1, 2)) + self.rng.choice(_LANG_SUFFIX))

    def title(self) -> str:
        return self._unique(lambda: f"The {self.rng.choice(_TITLE_ADJ)} {self.rng.choice(_TITLE_NOUN)}")

    def org(self) -> str:
        kinds = ["Society", "Company", "Institute", "Guild", "Academy", "League"]
        return self._unique(lambda: f"the {self.word((2, 2))} {self.rng.choice(kinds)}")

    def fresh(self, make) -> str:
        return self._unique(make)

    def lower(self) -> str:
        return self._unique(lambda: _pseudo_word(self.rng, self.rng.randint(2, 3)))


# ---------------------------------------------------------------------------------------
# extractive QA
@dataclass
class _Fact:
    sentence: str                        # the context sentence, answer marked as {A}
    question: str
    answer: str
    alternates: tuple[tuple[int, str], ...] = ()   # (offset from answer start, text) other gold spans


def _extractive_fact(rng: random.Random, names: _Names) -> _Fact:
    kind = rng.randrange(9)
    if kind == 0:
        country, city = names.place(), names.city()
        q = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?"])
        return _Fact(f"The capital of {country} is {{A}}.", q.format(c=country), city)
    if kind == 1:
        person, year = names.person(), str(rng.randint(1500, 1999))
        q = rng.choice(["In what year was {p} born?", "When was {p} born?"])
        return _Fact(f"{person} was born in {{A}}.", q.format(p=person), year)
    if kind == 2:
        org, person = names.org(), names.person()
        surname = person.split(" ", 1)[1]
        return _Fact(f"{_cap(org)} was founded by {{A}}.", f"Who founded {org}?", person,
                     ((len(person) - len(surname), surname),))
    if kind == 3:
        river, country = names.fresh(names.word), names.place()
        q = rng.choice(["Which country does the {r} River flow through?", "Through which country does the {r} River flow?"])
        return _Fact(f"The {river} River flows through {{A}}.", q.format(r=river), country)
    if kind == 4:
        city, num = names.city(), f"{rng.randint(2, 900) * 100 + rng.randrange(0, 100, 10):,}"
        q = rng.choice(["How many people live in {c}?", "What is the population of {c}?"])
        return _Fact(f"{city} has a population of {{A}} people.", q.format(c=city), num,
                     ((0, f"{num} people"),))
    if kind == 5:
        peak, height = names.fresh(names.word), f"{rng.randint(800, 8800):,}"
        return _Fact(f"Mount {peak} rises {{A}} above sea level.", f"How high is Mount {peak}?",
                     f"{height} metres", ((0, height),))
    if kind == 6:
        country, lang = names.place(), names.language()
        q = rng.choice(["What language do most people in {c} speak?", "Which language is spoken in {c}?"])
        return _Fact(f"Most people in {country} speak {{A}}.", q.format(c=country), lang)
    if kind == 7:
        person, title = names.person(), names.title()
        surname = person.split(" ", 1)[1]
        q = rng.choice(["Who wrote {t}?", "Who is the author of the novel {t}?"])
        return _Fact(f"{{A}} wrote the novel {title}.", q.format(t=title), person,
                     ((len(person) - len(surname), surname),))
    person, year, city = names.person(), str(rng.randint(1500, 1999)), names.city()
    return _Fact(f"In {year}, {person} moved to {{A}}.", f"Where did {person} move in {year}?", city)


def _extractive(spec: TaskSpec, size: int, rng: random.Random, is_train: bool) -> list[dict]:
    context_field = "context"
    others = [f for f in spec.inputs if f != context_field]
    question_field = "question" if "question" in others else (others[0] if others else None)
    path = spec.answers or "answers.text"
    parent, _, leaf = path.rpartition(".")
    with_start = leaf == "text"
    rows: list[dict] = []
    for _ in range(size):
        names = _Names(rng, unicode=rng.random() < UNICODE_SHARE)
        facts = [_extractive_fact(rng, names) for _ in range(rng.randint(3, 6))]
        target = rng.randrange(len(facts))
        parts: list[str] = []
        offset = start = 0
        for i, fact in enumerate(facts):
            before, after = fact.sentence.split("{A}")
            if i == target:
                start = offset + len(before)
            sentence = before + fact.answer + after
            parts.append(sentence)
            offset += len(sentence) + 1
        context = " ".join(parts)
        fact = facts[target]
        gold = [(start, fact.answer)]
        if not is_train:
            for _ in range(rng.randint(0, 2)):
                if fact.alternates and rng.random() < 0.5:
                    delta, text = rng.choice(fact.alternates)
                    gold.append((start + delta, text))
                else:
                    gold.append((start, fact.answer))
        row: dict = {}
        _set_field(row, context_field, context)
        if question_field:
            _set_field(row, question_field, fact.question)
        _fill_inputs(row, spec, [context_field] + ([question_field] if question_field else []), rng)
        if "title" not in row and "title" not in spec.inputs:
            row["title"] = _title_of(facts[0])
        _set_field(row, path, [text for _, text in gold])
        if with_start and parent:
            _set_field(row, f"{parent}.answer_start", [s for s, _ in gold])
        rows.append(row)
    return rows


def _title_of(fact: _Fact) -> str:
    words = re.findall(r"[^\W\d_][\w'-]*", fact.question)
    caps = [w for w in words[1:] if w[:1].isupper()]
    return "_".join(caps) if caps else "Sample"


# ---------------------------------------------------------------------------------------
# closed-book QA
@dataclass(frozen=True)
class _WorldFact:
    entity: str
    questions: tuple[str, ...]   # paraphrases, each with {e}
    aliases: tuple[str, ...]     # canonical answer first


def _world(spec: TaskSpec) -> list[_WorldFact]:
    """WORLD_SIZE invented facts with unique entities and unique answers, from the task name alone."""
    rng = _rng("world", spec.name)
    names = _Names(rng)
    facts: list[_WorldFact] = []
    while len(facts) < WORLD_SIZE:
        kind = len(facts) % 8
        if kind == 0:
            city = names.city()
            facts.append(_WorldFact(names.place(), (
                "What is the capital of {e}?", "Which city is the capital of {e}?", "Name the capital city of {e}."),
                (city, city.lower(), f"City of {city}")))
        elif kind == 1:
            person = names.person()
            first, surname = person.split(" ", 1)
            facts.append(_WorldFact(names.lower(), (
                "Who invented the {e}?", "The {e} was invented by whom?", "Which inventor created the {e}?"),
                (person, f"{first[0]}. {surname}", surname)))
        elif kind == 2:
            year = str(rng.randint(1000, 1999))
            while year in names.used:
                year = str(rng.randint(1000, 1999))
            names.used.add(year)
            facts.append(_WorldFact(f"Treaty of {names.city()}", (
                "In which year was the {e} signed?", "When was the {e} signed?", "The {e} was signed in what year?"),
                (year, f"the year {year}", f"AD {year}")))
        elif kind == 3:
            river = names.fresh(lambda: names.word((2, 2)))
            facts.append(_WorldFact(names.city(), (
                "Which river flows through {e}?", "What river runs through the city of {e}?"),
                (f"{river} River", f"the {river} River", river, f"{river.lower()} river")))
        elif kind == 4:
            animal = names.fresh(lambda: f"{rng.choice(_ANIMAL_ADJ)} {rng.choice(_ANIMALS)}")
            facts.append(_WorldFact(names.place(), (
                "What is the national animal of {e}?", "Which animal is the national symbol of {e}?"),
                (animal.title(), f"the {animal}", animal)))
        elif kind == 5:
            band = names.fresh(lambda: f"The {rng.choice(_TITLE_ADJ)} {rng.choice(_BAND_NOUNS)}")
            facts.append(_WorldFact(names.title().replace("The ", "", 1), (
                "Which band released the album {e}?", "Who recorded the album {e}?"),
                (band, band[4:], band.lower())))
        elif kind == 6:
            person = names.person()
            facts.append(_WorldFact(names.title(), (
                "Who wrote the novel {e}?", "Which author wrote {e}?", "{e} is a novel by which writer?"),
                (person, person.split(" ", 1)[1], person.upper())))
        else:
            org = names.fresh(lambda: " ".join([
                names.word((2, 2)), rng.choice(["Trade", "Science", "Maritime", "Railway", "Weather"]),
                rng.choice(["Council", "Bureau", "Union", "Office", "Board"])]))
            abbr = "".join(w[0] for w in org.split())
            facts.append(_WorldFact(names.city(), (
                "Which organisation has its headquarters in {e}?", "What organisation is based in {e}?"),
                (org, f"the {org}", abbr)))
    return facts


_ANIMALS = "lynx heron otter falcon badger stag crane hare ibex marten owl tortoise salamander boar".split()
_ANIMAL_ADJ = "snow marsh golden spotted river mountain red grey crested striped silver black".split()
_BAND_NOUNS = "Owls Lanterns Foxes Engines Sparrows Tides Wolves Pilots Comets Ravens".split()


def _closed_book(spec: TaskSpec, size: int, rng: random.Random, is_train: bool) -> list[dict]:
    world = _world(spec)
    question_field = "question" if "question" in spec.inputs else spec.inputs[0]
    # Train walks the world in a shuffled order, so any train split of >= WORLD_SIZE rows
    # teaches every fact; evaluation questions are drawn from that same world.
    order: list[int] = []
    rows: list[dict] = []
    for _ in range(size):
        if is_train:
            if not order:
                order = list(range(len(world)))
                rng.shuffle(order)
            fact = world[order.pop()]
        else:
            fact = world[rng.randrange(len(world))]
        template = rng.choice(fact.questions)
        question = template.format(e=fact.entity)
        question = question[:1].upper() + question[1:]
        aliases = list(fact.aliases)
        row: dict = {}
        _set_field(row, question_field, question)
        _fill_inputs(row, spec, [question_field], rng)
        _set_field(row, spec.answers or "answer.aliases", aliases)
        rows.append(row)
    return rows
