"""The names the scripts' options accept, importable without torch: a script's `-h` is answered before its heavy
imports (common.cli.options), and its options class lists these. model.py and cnn.py use them from here."""
MODELS = ("show_tell", "topdown")
ALIASES = {"updown": "topdown", "showtell": "show_tell", "fc": "show_tell"}
CNNS = ("resnet101", "resnet50", "resnet34", "resnet18", "vgg16", "small")
