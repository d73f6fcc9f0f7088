"""The sketch world's vocabulary: COCO classes, the 10 GenEval colours, numbers, plurals, synonyms, relations.

One table per concept, read by the prompt parser, the renderer and the oracle alike, so the three agree on words.
"""

from __future__ import annotations

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)

# The 10 GenEval colours with the RGB the renderer paints them in (chosen far apart and far from the background).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 215, 30),
    "green": (40, 160, 60),
    "blue": (35, 80, 220),
    "purple": (135, 50, 175),
    "pink": (245, 135, 190),
    "brown": (125, 80, 40),
    "black": (20, 20, 20),
    "white": (255, 255, 255),
}
BACKGROUND: tuple[int, int, int] = (196, 204, 212)  # a cool grey: distinct from all ten, so white and black both show

# Unambiguous synonyms read as a GenEval colour (documented reading); other colour words are refused by name.
COLOR_SYNONYMS: dict[str, str] = {
    "crimson": "red", "scarlet": "red", "violet": "purple", "lilac": "purple", "navy": "blue", "azure": "blue",
    "golden": "yellow", "gold": "yellow", "rose": "pink", "chocolate": "brown", "tan": "brown", "jet": "black",
    "ivory": "white", "snowy": "white",
}
UNSUPPORTED_COLORS: frozenset[str] = frozenset({
    "grey", "gray", "silver", "teal", "cyan", "turquoise", "magenta", "beige", "maroon", "olive", "lime",
    "indigo", "khaki", "aqua", "cream", "bronze", "copper", "mauve", "peach", "lavender", "burgundy", "charcoal",
})

NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "no": 0, "one": 1, "a": 1, "an": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "both": 2, "couple": 2, "pair": 2, "dozen": 12, "trio": 3,
}
MAX_COUNT = 12  # the renderer fits up to 12 copies of one object legibly on a 256x256 canvas

# Irregular plurals of class head words (regular ones follow the suffix rules in `singular`).
IRREGULAR_PLURALS: dict[str, str] = {
    "people": "person", "persons": "person", "men": "person", "women": "person", "children": "person",
    "kids": "person", "boys": "person", "girls": "person", "mice": "mouse", "knives": "knife", "wives": "wife",
    "leaves": "leaf", "loaves": "loaf", "shelves": "shelf", "wolves": "wolf", "calves": "calf", "halves": "half",
    "geese": "goose", "teeth": "tooth", "feet": "foot", "oxen": "ox", "sheep": "sheep", "deer": "deer",
    "fish": "fish", "skis": "skis", "scissors": "scissors", "broccoli": "broccoli", "broccolis": "broccoli",
    "buses": "bus", "busses": "bus", "glasses": "glass", "dishes": "dish", "boxes": "box", "foxes": "fox",
    "benches": "bench", "couches": "couch", "sandwiches": "sandwich", "watches": "watch", "toothbrushes": "toothbrush",
    "brushes": "brush", "tvs": "tv", "tv's": "tv", "cacti": "cactus", "octopi": "octopus", "tomatoes": "tomato",
    "potatoes": "potato", "heroes": "hero", "cherries": "cherry", "ponies": "pony", "puppies": "puppy",
    "butterflies": "butterfly", "strawberries": "strawberry", "lilies": "lily", "bunnies": "bunny",
}
SINGULAR_ONLY: frozenset[str] = frozenset({"bus", "glass", "grass", "dress", "class", "cactus", "octopus", "gas", "lens",
                                            "canvas", "boss", "chess", "compass", "harness", "walrus", "hippopotamus"})

# Other names for COCO classes (documented reading). Keys are singular.
CLASS_SYNONYMS: dict[str, str] = {
    "man": "person", "woman": "person", "child": "person", "kid": "person", "boy": "person", "girl": "person",
    "human": "person", "pedestrian": "person", "bike": "bicycle", "motorbike": "motorcycle", "scooter": "motorcycle",
    "plane": "airplane", "aeroplane": "airplane", "jet plane": "airplane", "automobile": "car", "sedan": "car",
    "lorry": "truck", "ship": "boat", "sailboat": "boat", "hydrant": "fire hydrant", "sofa": "couch",
    "television": "tv", "tv set": "tv", "television set": "tv", "fridge": "refrigerator", "cellphone": "cell phone",
    "mobile phone": "cell phone", "smartphone": "cell phone", "phone": "cell phone", "doughnut": "donut",
    "hotdog": "hot dog", "laptop computer": "laptop", "notebook computer": "laptop", "keyboard": "computer keyboard",
    "remote": "tv remote", "remote control": "tv remote", "hair dryer": "hair drier", "hairdryer": "hair drier",
    "blow dryer": "hair drier", "teddy": "teddy bear", "plant": "potted plant", "houseplant": "potted plant",
    "potted flower": "potted plant", "table": "dining table", "kitchen table": "dining table", "ball": "sports ball",
    "soccer ball": "sports ball", "football": "sports ball", "basketball": "sports ball", "racket": "tennis racket",
    "racquet": "tennis racket", "tennis racquet": "tennis racket", "bat": "baseball bat", "glove": "baseball glove",
    "mitt": "baseball glove", "wineglass": "wine glass", "mug": "cup", "teacup": "cup", "coffee cup": "cup",
    "flower vase": "vase", "pair of scissors": "scissors", "pair of skis": "skis", "ski": "skis",
    "microwave oven": "microwave", "stove": "oven", "handbags": "handbag", "purse": "handbag", "bag": "handbag",
    "rucksack": "backpack", "luggage": "suitcase", "parasol": "umbrella", "necktie": "tie", "armchair": "chair",
    "stool": "chair", "puppy": "dog", "kitten": "cat", "kitty": "cat", "pony": "horse", "calf": "cow",
    "cattle": "cow", "lamb": "sheep", "computer": "laptop", "monitor": "tv", "traffic signal": "traffic light",
    "stoplight": "traffic light", "toilet bowl": "toilet", "cupcake": "cake", "skate board": "skateboard",
    "surf board": "surfboard", "snow board": "snowboard", "fire plug": "fire hydrant", "book shelf": "bookshelf",
    "alarm clock": "clock", "wall clock": "clock",
}

# Words that describe but never name an object: dropped before the noun (documented reading).
MODIFIERS: frozenset[str] = frozenset({
    "big", "small", "large", "tiny", "huge", "little", "giant", "cute", "old", "new", "young", "shiny", "wooden",
    "metal", "plastic", "fluffy", "happy", "sad", "beautiful", "pretty", "ugly", "modern", "vintage", "fancy",
    "simple", "plain", "clean", "dirty", "tall", "short", "long", "round", "square", "fat", "thin", "lovely",
    "nice", "real", "realistic", "cartoon", "toy", "single", "lone", "solitary", "whole", "full", "empty",
    "bright", "dark", "light", "colorful", "colourful", "stylish", "adorable", "delicious", "fresh", "ripe",
    "separate", "distinct", "clearly", "visible", "identical", "same", "different", "individual", "other",
    "another", "some", "the", "a", "an", "of", "its", "their", "his", "her", "my", "your", "our",
})

# Relations: phrase -> GenEval relation of the *subject* (the object named first) to the reference.
RELATIONS: dict[str, str] = {
    "to the left of": "left of", "on the left of": "left of", "on the left side of": "left of",
    "at the left of": "left of", "left of": "left of", "leftward of": "left of", "to the left side of": "left of",
    "to the right of": "right of", "on the right of": "right of", "on the right side of": "right of",
    "at the right of": "right of", "right of": "right of", "to the right side of": "right of",
    "above": "above", "over": "above", "on top of": "above", "atop": "above", "higher than": "above",
    "up above": "above", "sitting above": "above", "placed above": "above",
    "below": "below", "under": "below", "underneath": "below", "beneath": "below", "lower than": "below",
    "down below": "below", "placed below": "below", "sitting below": "below",
}
INVERSE_RELATION: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

# Absolute placements a refined request uses ("... on the left side of the image"), by the side they name.
SIDES: dict[str, str] = {"left": "left", "right": "right", "top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
SIDE_RELATION: dict[tuple[str, str], str] = {
    ("left", "right"): "left of", ("right", "left"): "right of", ("top", "bottom"): "above", ("bottom", "top"): "below",
}
