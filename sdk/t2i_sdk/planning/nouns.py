"""Which nouns the rule planner may box: concrete things people draw, beyond COCO's 80.

Pure data. A word outside these lists and ``data/object_nouns.csv`` (detection vocabularies,
``object_vocabulary``) is never boxed (it stays in the prompt): when the planner is unsure it
leaves the object out. Singular, lower case; plurals come from
``lexicon.singularize``.
"""
from __future__ import annotations

PEOPLE = (
    "person", "man", "woman", "child", "kid", "boy", "girl", "baby", "toddler", "teenager",
    "lady", "gentleman", "guy", "friend", "couple", "mother", "father", "mom", "dad",
    "grandmother", "grandfather", "grandma", "grandpa", "son", "daughter", "brother", "sister",
    "astronaut", "knight", "wizard", "witch", "king", "queen", "prince", "princess",
    "soldier", "chef", "cook", "doctor", "nurse", "farmer", "student", "teacher", "worker",
    "firefighter", "policeman", "cowboy", "pirate", "ninja", "samurai", "clown", "dancer",
    "musician", "singer", "player", "athlete", "skier", "surfer", "skateboarder", "cyclist",
    "rider", "runner", "fisherman", "sailor", "pilot", "driver", "scientist", "artist",
    "painter", "photographer", "waiter", "waitress", "customer", "tourist", "hiker",
    "businessman", "shepherd", "sunbather", "swimmer", "monk", "priest", "nun", "angel", "fairy", "mermaid", "vampire", "zombie",
    "ghost", "alien", "superhero", "warrior", "viking", "elf", "dwarf", "giant", "goblin",
    "troll", "robot", "cyborg", "android", "mannequin", "snowman", "scarecrow", "statue",
)
ANIMALS = (
    "animal", "pet", "dog", "puppy", "cat", "kitten", "bird", "horse", "pony", "sheep",
    "lamb", "cow", "calf", "bull", "ox", "pig", "goat", "donkey", "mule", "elephant", "bear",
    "zebra", "giraffe", "lion", "tiger", "leopard", "cheetah", "jaguar", "panther", "wolf",
    "fox", "rabbit", "bunny", "hare", "squirrel", "chipmunk", "mouse", "rat", "hamster",
    "hedgehog", "raccoon", "otter", "beaver", "badger", "skunk", "deer", "moose", "elk",
    "reindeer", "camel", "llama", "alpaca", "kangaroo", "koala", "panda", "monkey", "gorilla",
    "chimpanzee", "ape", "sloth", "bat", "hippo", "hippopotamus", "rhino", "rhinoceros",
    "crocodile", "alligator", "lizard", "snake", "turtle", "tortoise", "frog", "toad",
    "duck", "duckling", "chicken", "chick", "hen", "rooster", "goose", "swan", "turkey",
    "owl", "eagle", "hawk", "falcon", "parrot", "pigeon", "dove", "crow", "raven", "seagull",
    "gull", "penguin", "flamingo", "peacock", "ostrich", "sparrow", "robin", "hummingbird",
    "heron", "crane", "stork", "pelican", "woodpecker", "kingfisher", "vulture", "finch",
    "canary", "toucan", "puffin", "magpie", "blackbird", "goldfinch", "bluebird",
    "fish", "goldfish", "shark", "whale", "dolphin", "seal", "walrus", "octopus", "squid",
    "jellyfish", "crab", "lobster", "shrimp", "starfish", "butterfly", "moth", "bee", "wasp",
    "ant", "ladybug", "beetle", "dragonfly", "spider", "snail", "worm", "caterpillar",
    "mosquito", "fly", "unicorn", "dragon", "dinosaur", "phoenix", "griffin", "yeti",
    "corgi", "poodle", "labrador", "husky", "beagle", "bulldog", "dachshund", "chihuahua",
)
FOOD = (
    "apple", "banana", "orange", "lemon", "lime", "pear", "peach", "plum", "cherry",
    "strawberry", "blueberry", "raspberry", "grape", "watermelon", "melon", "pineapple",
    "mango", "kiwi", "coconut", "avocado", "tomato", "potato", "carrot", "broccoli",
    "cucumber", "pumpkin", "onion", "pepper", "mushroom", "corn", "cabbage", "lettuce",
    "eggplant", "garlic", "egg", "bread", "loaf", "baguette", "croissant", "bagel",
    "sandwich", "burger", "hamburger", "pizza", "cake", "cupcake", "cookie", "pie", "donut",
    "doughnut", "muffin", "pancake", "waffle", "taco", "burrito", "sushi", "cheese",
    "sausage", "steak", "candy", "lollipop", "chocolate", "pretzel", "popcorn", "macaron",
    "dumpling", "noodle", "nut", "walnut", "acorn", "peanut", "fruit", "vegetable", "berry",
)
FURNITURE = (
    "chair", "table", "desk", "sofa", "couch", "bed", "bench", "stool", "shelf", "bookshelf",
    "bookcase", "cabinet", "cupboard", "drawer", "dresser", "wardrobe", "armchair",
    "ottoman", "lamp", "lantern", "candle", "chandelier", "mirror", "rug", "carpet",
    "curtain", "pillow", "cushion", "blanket", "towel", "crib", "cradle", "hammock",
    "fireplace", "clock", "vase", "painting", "frame", "poster", "sign", "mailbox",
    "counter", "sponge", "trident", "well", "cane", "walking stick", "umbrella stand",
)
KITCHEN = (
    "cup", "mug", "glass", "bottle", "jar", "bowl", "plate", "dish", "saucer", "tray", "pot",
    "pan", "kettle", "teapot", "fork", "knife", "spoon", "chopstick", "spatula", "ladle",
    "whisk", "toaster", "microwave", "oven", "stove", "refrigerator", "fridge", "sink",
    "dishwasher", "blender", "basket", "bucket", "box", "bag", "can", "tin", "barrel",
    "crate", "carton", "jug", "pitcher", "thermos", "napkin", "candlestick", "cage",
)
VEHICLES = (
    "car", "truck", "bus", "van", "taxi", "jeep", "train", "tram", "locomotive", "bicycle",
    "bike", "motorcycle", "motorbike", "scooter", "skateboard", "airplane", "plane",
    "aeroplane", "jet", "helicopter", "rocket", "spaceship", "spacecraft", "ufo", "boat",
    "ship", "sailboat", "yacht", "canoe", "kayak", "submarine", "tractor", "bulldozer",
    "excavator", "ambulance", "limousine", "wagon", "cart", "carriage", "sled", "sleigh",
    "balloon", "blimp", "drone", "tank", "raft",
)
THINGS = (
    "ball", "kite", "frisbee", "umbrella", "backpack", "handbag", "purse", "suitcase",
    "wallet", "tie", "hat", "cap", "helmet", "crown", "shoe", "boot", "sneaker", "sandal",
    "sock", "glove", "scarf", "shirt", "jacket", "coat", "dress", "skirt", "sweater",
    "hoodie", "jeans", "pants", "shorts", "uniform", "suit", "costume", "apron", "mask",
    "glasses", "sunglasses", "goggles", "watch", "ring", "necklace", "bracelet", "earring",
    "key", "pen", "pencil", "brush", "paintbrush", "crayon", "notebook", "book", "magazine",
    "newspaper", "letter", "envelope", "map", "phone", "camera", "computer", "laptop",
    "tablet", "keyboard", "monitor", "screen", "television", "tv", "radio", "speaker",
    "headphones", "microphone", "remote", "mouse", "scissors", "toothbrush", "comb",
    "razor", "soap", "hammer", "wrench", "screwdriver", "saw", "axe", "shovel", "rake",
    "ladder", "rope", "chain", "bell", "flag", "trophy", "medal", "coin", "gift", "present",
    "toy", "doll", "puppet", "teddy", "block", "puzzle", "kite", "skis", "snowboard",
    "surfboard", "racket", "bat", "sword", "shield", "bow", "arrow", "spear", "gun",
    "cannon", "wand", "staff", "guitar", "piano", "violin", "cello", "drum", "trumpet",
    "saxophone", "flute", "harp", "accordion", "banjo", "ukulele", "tent", "bench",
    "fountain", "mailbox", "hydrant", "globe", "telescope", "microscope", "candle",
    "flashlight", "lightbulb", "fan", "heater", "vacuum", "iron", "plug", "battery",
    "wheel", "tire", "anchor", "compass", "hourglass", "trophy", "skull", "bone",
    "feather", "shell", "pearl", "diamond", "gem", "crystal", "egg", "nest", "web",
    "circle", "square", "triangle", "star", "hexagon", "cross", "heart", "cube", "sphere",
    "pyramid", "cylinder", "cone",
)
PLANTS_AND_BUILDINGS = (
    "tree", "plant", "flower", "rose", "tulip", "sunflower", "daisy", "lily", "orchid",
    "cactus", "bush", "shrub", "fern", "leaf", "branch", "log", "stump", "vine", "bouquet",
    "mushroom", "rock", "stone", "boulder", "house", "building", "skyscraper", "castle",
    "tower", "church", "cathedral", "temple", "pagoda", "barn", "cottage", "cabin", "hut",
    "shed", "lighthouse", "windmill", "bridge", "fence", "gate", "door", "window",
    "chimney", "pillar", "column", "arch", "monument", "pyramid", "igloo", "museum",
    "palace", "mansion",
    "treehouse", "kennel", "doghouse", "birdhouse", "mailbox", "streetlight", "lamppost",
    "sign", "billboard", "bench", "sculpture", "cloud", "moon", "sun", "planet", "rainbow",
    "volcano", "iceberg", "snowflake",
)
# Fixed names only: "fire hydrant", "tv remote". A descriptive modifier is no part of the
# label ("oak tree" -> tree, "cardboard box" -> box, "rubber duck" -> duck).
COMPOUNDS = (
    "hair dryer", "hair drier", "ice cream", "soccer ball", "tennis ball", "basketball",
    "beach ball", "polar bear", "teddy bear", "palm tree", "christmas tree", "street light",
    "street lamp", "coffee table", "water bottle", "paper bag", "shopping cart", "fire truck",
    "police car", "police officer", "school bus", "hot air balloon", "sports car",
    "race car", "light bulb", "washing machine", "mobile phone", "smart phone",
    "computer mouse", "computer keyboard", "computer monitor", "tv remote", "remote control",
    "golden retriever", "german shepherd", "french fries", "picture frame", "flower pot",
    "cowboy hat", "baseball cap", "top hat", "tennis racket", "baseball bat",
    "baseball glove", "wine glass", "fire hydrant", "stop sign", "traffic light",
    "parking meter", "sports ball", "cell phone", "dining table", "potted plant", "hot dog",
    "alarm clock", "rocking chair", "bunk bed", "guinea pig", "sea lion", "killer whale",
    "stuffed animal", "space shuttle", "pickup truck", "birthday cake", "cutting board",
    "frying pan", "coffee maker", "trash can", "garbage can", "soda can", "fire extinguisher",
    "traffic cone", "ferris wheel", "sand castle", "ice cube", "candy cane",
    "gingerbread man", "swimming pool", "vending machine", "sewing machine",
    "record player", "video game", "game controller", "gas station", "guitar case",
    "cherry blossom", "teddy", "sunflower", "snow man",
)
# Names and materials that hold an object word but are none: "van gogh style", "gold leaf".
NOT_OBJECTS = (
    "van gogh", "gold leaf", "silver leaf", "oil on canvas", "blender", "unreal engine",
    "octane render", "unity", "houdini", "photoshop", "golden hour", "blue hour",
    "depth of field", "color palette", "colour palette", "studio ghibli", "art deco",
    "art nouveau", "pop art", "street art", "line art", "pixel art", "fan art", "key art",
)
# Parts and places: in "the roof of the church" the church is the object, not the roof.
PART_NOUNS = frozenset((
    "roof", "top", "side", "edge", "bottom", "corner", "base", "middle", "center", "centre",
    "surface", "front", "back", "end", "tip", "foot", "rim", "shore", "bank", "window sill",
    "windowsill", "shade", "shadow", "inside", "outside", "interior", "entrance", "door",
    "floor", "ceiling", "wall", "steps", "step", "porch", "yard", "branch", "trunk",
))
# Parts of a body: "a customer's beard" shows the customer, who is boxed even where the part is
# no object noun (the chunker's ``_owner_of_part``).
BODY_PART_NOUNS = frozenset((
    "hair", "beard", "moustache", "mustache", "face", "head", "hand", "arm", "leg", "foot",
    "knee", "lap", "shoulder", "neck", "back", "nose", "eye", "ear", "mouth", "lip", "cheek",
    "chin", "tooth", "tongue", "finger", "toe", "tail", "paw", "wing", "fur", "mane", "horn",
    "beak", "feather", "whisker", "claw", "hoof", "belly", "forehead", "smile",
))
# Scene nouns: places and surfaces; "on a beach" is a background, "on a bench" is not.
SCENE = (
    "beach", "kitchen", "snow", "grass", "lawn", "street", "road", "highway", "alley",
    "sidewalk", "path", "trail", "floor", "ground", "field", "forest", "woods", "jungle",
    "park", "room", "city", "town", "village", "desert", "ocean", "sea", "lake", "river",
    "pond", "stream", "waterfall", "sky", "garden", "yard", "backyard", "playground",
    "background", "foreground", "space", "water", "sand", "mountain", "hill", "valley",
    "canyon", "cliff", "cave", "island", "shore", "coast", "meadow", "countryside",
    "farm", "orchard", "living room", "bedroom", "bathroom", "classroom", "office",
    "studio", "library", "restaurant", "cafe", "bar", "market", "store", "shop",
    "supermarket", "hospital", "school", "station", "train station", "airport", "harbor",
    "port", "dock", "pier", "stage", "arena", "stadium", "court", "pool", "night", "day",
    "sunset", "sunrise", "dawn", "dusk", "morning", "evening", "afternoon", "rain", "fog",
    "mist", "storm", "winter", "summer", "autumn", "spring", "landscape", "horizon",
    "distance", "surface", "wall", "universe", "galaxy", "outer space", "underwater", "moonlight",
    "sunlight", "darkness", "shade", "shadow", "snowfall", "wilderness", "swamp",
    "savanna", "tundra", "glacier", "rooftop", "roof", "ceiling", "countertop",
    "window sill", "windowsill", "table top", "tabletop", "hallway", "corridor", "attic",
    "basement", "garage", "porch", "balcony", "patio", "courtyard", "plaza",
    "downtown", "neighborhood", "suburb", "dining room", "grocery store", "coffee shop",
    "snowy field", "wheat field", "flower field", "city street", "night sky",
)
# After "by" these made the picture and are not in it: "by a famous painter".
MAKER_NOUNS = frozenset(("painter", "artist", "photographer", "illustrator", "sculptor",
                         "designer", "author", "writer", "master", "student"))
# "painted by a child": the child made it; "chased by a dog": the dog is in the picture.
MAKING_VERBS = frozenset((
    "made", "painted", "drawn", "created", "written", "designed", "photographed",
    "illustrated", "sculpted", "carved", "crafted", "rendered", "inspired", "composed",
    "generated", "imagined", "signed", "shot", "captured",
))
# Times of day and seasons: a background only after a preposition ("at night", not "one day").
TIME_NOUNS = frozenset((
    "night", "day", "sunset", "sunrise", "dawn", "dusk", "morning", "evening", "afternoon",
    "winter", "summer", "autumn", "spring", "noon", "midnight",
))
# Things something can be IN: "a cat in a box" is a cat inside a box; "a cat in a hat" is not.
CONTAINERS = frozenset((
    "box", "bowl", "cup", "mug", "glass", "basket", "jar", "car", "bag", "vase", "bucket",
    "pot", "pan", "bottle", "cage", "crate", "barrel", "nest", "tank", "aquarium", "drawer",
    "suitcase", "backpack", "handbag", "purse", "truck", "bus", "van", "taxi", "boat", "canoe",
    "kayak", "cart", "shopping cart", "wagon", "stroller", "envelope", "teapot", "kettle",
    "cupboard", "cabinet", "carton", "tin", "sink", "bathtub", "oven", "microwave",
    "refrigerator", "fridge", "pocket", "tent", "house", "igloo", "hut", "cabin", "kennel",
    "trash can", "garbage can", "paper bag", "flower pot", "wine glass", "jug", "pitcher",
    "tray", "plate", "dish", "bed", "crib", "cradle", "hammock", "airplane", "helicopter",
    "train", "spaceship", "submarine", "swimming pool", "hot air balloon", "treehouse",
    "birdhouse", "school bus", "police car", "fire truck",
))
# Worn things: "a woman in a red dress" describes the woman; the dress is not boxed apart.
CLOTHING = frozenset((
    "hat", "cap", "helmet", "shirt", "jacket", "coat", "dress", "skirt", "sweater",
    "hoodie", "jeans", "pants", "shorts", "uniform", "suit", "costume", "apron", "mask",
    "scarf", "glove", "boot", "shoe", "sneaker", "sandal", "sock", "tie", "glasses",
    "sunglasses", "goggles", "cowboy hat", "baseball cap", "top hat", "crown", "robe",
    "armor", "armour", "gown", "tuxedo", "kimono", "raincoat", "overalls", "bikini",
    "swimsuit",
))
# Picture words: "a painting" on a wall is a thing, "an oil painting of a cat" is a medium.
STYLE_NOUNS = frozenset((
    "painting", "photo", "photograph", "picture", "image", "drawing", "illustration",
    "render", "rendering", "sketch", "portrait", "artwork", "poster", "art", "print",
    "photography", "shot", "snapshot", "close-up", "closeup", "depiction", "wallpaper",
    "concept", "style", "scene", "view", "cartoon", "comic", "anime", "manga", "mosaic",
    "fresco", "mural", "tapestry", "engraving", "woodcut", "etching", "lithograph", "collage",
    "stained glass window", "stained glass", "sticker", "icon", "logo", "emoji", "graphic",
    "watercolor", "watercolour", "pastel", "still life", "landscape painting",
))
# Picture words that are also things on a wall: boxed as "a painting" / "a poster" only.
FRAMED_STYLE_NOUNS = frozenset(("painting", "poster", "photo", "photograph", "picture",
                                "drawing", "portrait", "print", "sculpture"))
# "a flock of birds": a count word, not the object (counts not stated: a few).
COLLECTIVE_NOUNS = {
    "bunch": 3, "group": 3, "herd": 4, "flock": 4, "pack": 3, "crowd": 5, "pile": 3,
    "stack": 3, "row": 4, "line": 4, "set": 3, "school": 4, "swarm": 5, "team": 4,
    "collection": 3, "handful": 3, "lot": 4, "lots": 4, "plenty": 4, "number": 3,
    "family": 3, "pod": 3, "cluster": 3, "heap": 3, "dozen": 12, "pair": 2, "couple": 2,
}
