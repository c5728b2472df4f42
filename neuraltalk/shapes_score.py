"""The shapes demo's caption accuracy: the share of captioned images whose caption names every shape of the
scene with its colour and kind, and position words only where they hold (common.testing.shapes'
`caption_names_scene`).

    python -m neuraltalk.shapes_score -vis_json demo_out/neuraltalk/vis/vis.json \
        -regions_json demo_out/neuraltalk/shapes/region_descriptions.json
    # -> shapes caption accuracy: 0.933 (28 of 30 images)

vis.json is eval.py's output ([{image_id, caption, file_name}]); the scenes come from the Visual Genome files
that `write_dataset` writes beside each other (region_descriptions.json, image_data.json), matched to the
captions by image file name.
"""
import json
import os

from common.cli import UserError, flag, options, parse, run
from common.testing.shapes import caption_names_scene


@options
class ScoreOptions:
    """Print the shapes caption accuracy of eval.py's captions of shapes-world images."""
    vis_json: str = flag("vis/vis.json", "eval.py's captions ([{image_id, caption, file_name}])")
    regions_json: str = flag("", "the shapes dataset's region_descriptions.json (image_data.json beside it)")
    show_wrong: int = flag(0, "also print the captions scored wrong (1 = yes)")


def _load(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file ({what})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not JSON ({e.msg}, line {e.lineno}); {what}") from None


def scenes_by_file(regions_json):
    """{image file name: (regions [{x, y, w, h, phrase}], image side)} from write_dataset's VG files."""
    image_data = os.path.join(os.path.dirname(regions_json), "image_data.json")
    meta = {m["image_id"]: m for m in _load(image_data, "write_dataset writes it beside region_descriptions.json")}
    scenes = {}
    for entry in _load(regions_json, "the shapes dataset's region_descriptions.json"):
        m = meta[entry["id"]]
        if m["width"] != m["height"]:
            raise UserError(f"{image_data}: image {entry['id']} is not square; not a shapes-world image")
        regions = [{"x": r["x"], "y": r["y"], "w": r["width"], "h": r["height"], "phrase": r["phrase"]}
                   for r in entry["regions"]]
        scenes[os.path.basename(m["url"])] = (regions, m["width"])
    return scenes


def shapes_accuracy(predictions, scenes):
    """predictions [{caption, file_name}], scenes as scenes_by_file -> (accuracy, the predictions scored wrong)."""
    if not predictions:
        raise UserError("no captions to score")
    wrong = []
    for p in predictions:
        name = os.path.basename(p["file_name"])
        if name not in scenes:
            raise UserError(f"{name}: captioned, but not an image of this shapes dataset")
        regions, size = scenes[name]
        if not caption_names_scene(p["caption"], regions, size):
            wrong.append(p)
    return 1 - len(wrong) / len(predictions), wrong


def main(opt: ScoreOptions):
    if not opt.regions_json:
        raise UserError("give -regions_json (the shapes dataset's region_descriptions.json)")
    preds = _load(opt.vis_json, "eval.py writes it (-dump_json 1)")
    if preds and "file_name" not in preds[0]:
        raise UserError(f"{opt.vis_json}: its captions carry no file_name; caption a -split of the shapes dataset")
    scenes = scenes_by_file(opt.regions_json)
    acc, wrong = shapes_accuracy(preds, scenes)
    if opt.show_wrong:
        for p in wrong:
            phrases = ", ".join(r["phrase"] for r in scenes[os.path.basename(p["file_name"])][0])
            print(f"wrong: {p['file_name']}: {p['caption']!r} (the scene: {phrases})")
    print(f"shapes caption accuracy: {acc:.3f} ({len(preds) - len(wrong)} of {len(preds)} images)")
    return acc


if __name__ == "__main__":
    run(main, parse(ScoreOptions))
