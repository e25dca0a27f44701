"""DeepImageFeaturizer on Spark against the local ImageClassifier on the same images (real photos).

    python bench/featurizer.py [--models mobilenet_v2 resnet50] [--images 64] [--master local[2]]

The images: skimage's photographs (chelsea, coffee, astronaut, rocket, ...) cropped at a few places,
written as JPEG files, read once with ``read_images`` and cached (decoding is not timed). For each model:
  spark   DeepImageFeaturizer(...).transform(df) forced with the "noop" sink: the pooled backbone features
          of every image, on the executors (preprocessing + forward, batches of --batch-size);
          the first run also ships the model and loads it in each Python worker, so it is reported apart
  local   in this process, on the decoded arrays: ImageClassifier(model).scores (whole classifier) and the
          backbone alone (what the featurizer computes), same preprocessing, same batch size
Runs alternate (--repeat times each; the machine is shared and noisy): rates from the best of each,
and the ratio of the medians too.
ImageNet weights are used when the file is in the cache; otherwise random weights (same arithmetic,
said in the output). Prints one JSON line per model.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np


def photos(count, size=320):
    """``count`` real photographs (crops of skimage's sample photos), as RGB uint8 arrays."""
    from skimage import data

    sources = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket(), data.cat(), data.immunohistochemistry()]
    out = []
    for k in range(count):
        image = sources[k % len(sources)]
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        h, w = image.shape[:2]
        side = min(h, w, size + 40 * (k // len(sources)) % 160)
        top, left = (k * 37) % (h - side + 1), (k * 53) % (w - side + 1)
        out.append(np.ascontiguousarray(image[top:top + side, left:left + side]))
    return out


def model_pair(name):
    """(classifier, backbone, weights) for a zoo model: ImageNet weights if cached, else random."""
    from ember.zoo import models, weights
    from ember.zoo.vision.classifier import MODELS

    entry = weights.get(f"{name}/torchvision")
    cached = os.path.exists(os.path.join(weights.cache_dir(), entry.filename))
    kind = "imagenet" if cached else None
    builder = getattr(models, MODELS[name])
    classifier = builder(weights=kind).eval()
    backbone = builder(include_top=False, pooling="avg", weights=kind).eval()
    classifier.preprocessing = backbone.preprocessing = entry.preprocessing
    return classifier, backbone, "imagenet" if cached else "random (ImageNet file not in the cache)"


def bench(name, args, spark, df, local):
    """One model's figures (a dict)."""
    from ember.zoo.pipeline import DeepImageFeaturizer
    from ember.zoo.pipeline.image import _shipment, model_outputs
    from ember.zoo.vision import ImageClassifier

    classifier, backbone, weights = model_pair(name)
    _shipment(spark, name, True, model=backbone)  # (the featurizer uses this model: same weights as local)
    featurizer = DeepImageFeaturizer(inputCol="image", outputCol="features", modelName=name,
                                     batchSize=args.batch_size)
    clf = ImageClassifier(name, weights=classifier, batch_size=args.batch_size)

    def spark_run():
        featurizer.transform(df).write.format("noop").mode("overwrite").save()

    def classifier_run():
        clf.scores(local)

    def backbone_run():
        model_outputs(backbone, backbone.preprocessing, local, args.batch_size)

    start = time.perf_counter()
    spark_run()
    first = time.perf_counter() - start
    classifier_run()  # (warm-up in this process, as the workers had theirs in the first run)
    times = {"spark": [], "local_classifier": [], "local_backbone": []}
    for _ in range(args.repeat):
        for key, run in (("spark", spark_run), ("local_classifier", classifier_run),
                         ("local_backbone", backbone_run)):
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    rate = {key: args.images / min(values) for key, values in times.items()}
    return {
        "model": name, "weights": weights, "images": args.images, "master": args.master,
        "batch_size": args.batch_size,
        "spark_first_run_images_per_s": round(args.images / first, 2),
        "spark_images_per_s": round(rate["spark"], 2),
        "local_classifier_images_per_s": round(rate["local_classifier"], 2),
        "local_backbone_images_per_s": round(rate["local_backbone"], 2),
        "spark_vs_local_classifier": round(rate["spark"] / rate["local_classifier"], 2),
        "spark_vs_local_classifier_medians": round(float(np.median(times["local_classifier"]))
                                                   / float(np.median(times["spark"])), 2),
        "seconds": {key: [round(v, 2) for v in values] for key, values in times.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50"])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from PIL import Image
    from pyspark.sql import SparkSession

    import ember
    from ember.zoo.pipeline import read_images
    from ember.zoo.vision import read_images as local_read_images

    folder = tempfile.mkdtemp(prefix="ember-bench-photos-")
    for k, image in enumerate(photos(args.images)):
        Image.fromarray(image).save(os.path.join(folder, f"{k:04d}.jpg"), quality=90)
    local = local_read_images(folder)["images"]

    ember.init_nncontext(master=args.master)
    spark = SparkSession.builder.getOrCreate()
    df = read_images(folder, spark).cache()
    assert df.count() == args.images

    for name in args.models:
        print(json.dumps(bench(name, args, spark, df, local)), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
