"""What the starter hub holds: a declarative list of models, one plan for ``--quick`` and one full.

Every model has a fixed name, so a build that finds a model of that name in the hub skips it; the
names are the resumption keys. Label spaces overlap on purpose (footwear inside Fashion-10, birds
inside all animals, a weak copy next to a strong one) so that selection has real choices to make.
Heads are defined by graph subtrees rather than fixed class lists, so they follow the corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ..corpus import CorpusConfig

BACKBONE = "efficientnet-lite0@224"
RECIPE = 2  # bump when the training code changes, so that hubs retrain their cached models


@dataclass(frozen=True)
class Pretrained:
    """A model the hub builds from a packaged name (``efficientnet-lite`` or ``conse`` family)."""

    name: str
    family: str
    variant: str


@dataclass(frozen=True)
class GrayExpert:
    """A small CNN on one 28x28 gray source; ``classes`` are the source's class names."""

    name: str
    source: str
    classes: tuple[str, ...] = ()  # empty: every class of the source
    epochs: int = 2
    data_fraction: float = 1.0
    batch_size: int = 128


@dataclass(frozen=True)
class HeadExpert:
    """A head on frozen Lite0 features over the train concepts below ``roots`` (synset names)."""

    name: str
    roots: tuple[str, ...]
    head: str = "linear"
    epochs: int = 30
    data_fraction: float = 1.0


@dataclass(frozen=True)
class LitVLM:
    """A LiT projection trained on the concepts below ``roots`` plus some gray images."""

    name: str
    roots: tuple[str, ...]
    gray_sources: tuple[str, ...] = ()
    gray_per_class: int = 0
    epochs: int = 60


@dataclass(frozen=True)
class StarterPlan:
    """Everything one starter build does, in the order it does it."""

    mode: str
    corpus: CorpusConfig
    pretrained: tuple[Pretrained, ...]
    gray: tuple[GrayExpert, ...]
    heads: tuple[HeadExpert, ...]
    lits: tuple[LitVLM, ...]
    images_per_concept: int | None = None  # train images per concept for heads and LiT
    min_classes: int = 3

    @property
    def names(self) -> list[str]:
        """Every planned model's name (unique: names are the keys a resumed build skips by)."""
        return [m.name for group in (self.pretrained, self.gray, self.heads, self.lits)
                for m in group]


FASHION = "fashion-mnist"
MNIST = "mnist"
ANIMALS = "animal-mnist"
FOOTWEAR = ("Sandal", "Sneaker", "Ankle boot")
TOPS = ("T-shirt/top", "Pullover", "Shirt", "Coat", "Dress")
FARM = ("cow", "horse", "sheep", "dog", "cat")
WILD = ("bear", "elephant", "giraffe", "zebra", "bird")

ANIMAL_ROOTS = ("animal.n.01",)
FOOD_ROOTS = ("food.n.01", "food.n.02", "produce.n.01", "edible_fruit.n.01")
SEA_ROOTS = ("fish.n.01", "mollusk.n.01", "crustacean.n.01", "cetacean.n.01",
             "coelenterate.n.01", "pinniped.n.01")
HOUSEHOLD_ROOTS = ("furnishing.n.02", "tableware.n.01", "vessel.n.03",
                   "source_of_illumination.n.01", "timepiece.n.01")
PLAY_ROOTS = ("sports_equipment.n.01", "game_equipment.n.01", "plaything.n.01")
ELECTRONICS_ROOTS = ("electronic_equipment.n.01", "electronic_device.n.01", "computer.n.01")


def _gray(epochs: int) -> tuple[GrayExpert, ...]:
    """The 28x28 experts of both plans; only the epochs of the strong ones differ."""
    return (
        GrayExpert("cnn-fashion10", FASHION, epochs=epochs),
        GrayExpert("cnn-footwear", FASHION, FOOTWEAR, epochs=epochs),
        GrayExpert("cnn-tops", FASHION, TOPS, epochs=epochs),
        GrayExpert("cnn-trousers-bags", FASHION, ("Trouser", "Bag"), epochs=1),
        GrayExpert("cnn-fashion10-weak", FASHION, epochs=1, data_fraction=0.05, batch_size=16),
        GrayExpert("cnn-digits0-4", MNIST, tuple("01234"), epochs=epochs),
        GrayExpert("cnn-digits5-9", MNIST, tuple("56789"), epochs=epochs),
        GrayExpert("cnn-digits10-weak", MNIST, epochs=1, data_fraction=0.05, batch_size=16),
        GrayExpert("cnn-animals10", ANIMALS, epochs=epochs),
        GrayExpert("cnn-farm-animals", ANIMALS, FARM, epochs=epochs),
        GrayExpert("cnn-wild-animals", ANIMALS, WILD, epochs=epochs),
    )


QUICK_HEADS = (
    HeadExpert("head-fruits", ("fruit.n.01",)),
    HeadExpert("head-vegetables", ("vegetable.n.01",)),
    HeadExpert("head-vehicles", ("conveyance.n.03",)),
    HeadExpert("head-instruments", ("musical_instrument.n.01",)),
    HeadExpert("head-mammals", ("mammal.n.01",)),
    HeadExpert("head-birds", ("bird.n.01",)),
    HeadExpert("head-clothing", ("clothing.n.01",)),
    HeadExpert("head-dishes", ("dish.n.02",)),
    HeadExpert("head-animals", ANIMAL_ROOTS),
    HeadExpert("head-mammals-weak", ("mammal.n.01",), epochs=10, data_fraction=0.5),
)

FULL_HEADS = QUICK_HEADS + (
    HeadExpert("head-aircraft-boats", ("craft.n.02",)),
    HeadExpert("head-tools", ("tool.n.01", "implement.n.01")),
    HeadExpert("head-carnivores", ("carnivore.n.01",)),
    HeadExpert("head-hoofed", ("ungulate.n.01",)),
    HeadExpert("head-bugs", ("arthropod.n.01",)),
    HeadExpert("head-sea-life", SEA_ROOTS),
    HeadExpert("head-reptiles", ("reptile.n.01", "amphibian.n.03")),
    HeadExpert("head-hats-shoes", ("headdress.n.01", "footwear.n.02")),
    HeadExpert("head-sweets", ("baked_goods.n.01", "dessert.n.01", "sweet.n.03")),
    HeadExpert("head-household", HOUSEHOLD_ROOTS),
    HeadExpert("head-sports-toys", PLAY_ROOTS),
    HeadExpert("head-plants", ("plant.n.02",)),
    HeadExpert("head-buildings", ("structure.n.01",)),
    HeadExpert("head-people", ("person.n.01",)),
    HeadExpert("head-body-parts", ("body_part.n.01",)),
    HeadExpert("head-electronics", ELECTRONICS_ROOTS),
    HeadExpert("head-food", FOOD_ROOTS),
    HeadExpert("head-artifacts", ("artifact.n.01",)),
    HeadExpert("head-mammals-mlp", ("mammal.n.01",), head="mlp"),
    HeadExpert("head-vehicles-mlp", ("conveyance.n.03",), head="mlp"),
    HeadExpert("head-food-mlp", FOOD_ROOTS, head="mlp"),
    HeadExpert("head-artifacts-weak", ("artifact.n.01",), epochs=10, data_fraction=0.25),
    HeadExpert("head-animals-weak", ANIMAL_ROOTS, epochs=10, data_fraction=0.25),
    HeadExpert("head-fruits-weak", ("fruit.n.01",), epochs=5, data_fraction=0.25),
)

LIT_ANIMALS_FOOD = ANIMAL_ROOTS + FOOD_ROOTS + ("plant.n.02",)


def quick_plan() -> StarterPlan:
    """At least 12 experts, one EfficientNet-Lite, two VLMs, on the quick corpus."""
    return StarterPlan(
        mode="quick", corpus=CorpusConfig.for_quick(),
        pretrained=(Pretrained("efficientnet-lite0", "efficientnet-lite", "efficientnet-lite0"),
                    Pretrained("conse-lite0", "conse", "efficientnet-lite0")),
        gray=_gray(epochs=2), heads=QUICK_HEADS,
        lits=(LitVLM("lit-animals-food", LIT_ANIMALS_FOOD, epochs=40),))


def full_plan() -> StarterPlan:
    """At least 30 experts, the three EfficientNet-Lites, four VLMs, on the full corpus."""
    lites = tuple(Pretrained(f"efficientnet-lite{i}", "efficientnet-lite", f"efficientnet-lite{i}")
                  for i in range(3))
    conse = tuple(Pretrained(f"conse-lite{i}", "conse", f"efficientnet-lite{i}") for i in (0, 1))
    return StarterPlan(
        mode="full", corpus=CorpusConfig(), pretrained=lites + conse, gray=_gray(epochs=3),
        heads=FULL_HEADS,
        lits=(LitVLM("lit-animals-food", LIT_ANIMALS_FOOD, (ANIMALS,), gray_per_class=30),
              LitVLM("lit-artifacts", ("artifact.n.01",), (FASHION,), gray_per_class=30)),
        images_per_concept=6)


def recipe_digest(spec: GrayExpert | HeadExpert | LitVLM, plan: StarterPlan) -> str:
    """What a trained model was built from; a hub model of the same name but another digest is
    stale and gets replaced."""
    doc = {"recipe": RECIPE, "type": type(spec).__name__, "spec": dataclasses.asdict(spec),
           "images_per_concept": plan.images_per_concept}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def starter_plan(quick: bool = False) -> StarterPlan:
    return quick_plan() if quick else full_plan()
