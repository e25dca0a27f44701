"""``python -m ember.jvm``: print the spark-submit arguments that load ember's block service.

    spark-submit $(python -m ember.jvm) --master yarn train.py

``--jar`` prints only the jar's path; ``--build`` rebuilds the jar shipped in the package from its
source (with javac --release 8 against the installed Spark's jars) and prints its path.
"""
import argparse
import shlex
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ember.jvm", description=__doc__.splitlines()[0])
    parser.add_argument("--jar", action="store_true", help="print only the plugin jar's path")
    parser.add_argument("--build", action="store_true", help="rebuild the shipped jar from the Java source")
    args = parser.parse_args(argv)
    from ember.optim.spark import blocks

    try:
        if args.build:
            print(blocks.compile_plugin(blocks.SHIPPED_JAR))
        elif args.jar:
            print(blocks.block_service_jar())
        else:
            print(" ".join(shlex.quote(a) for a in blocks.submit_args()))
    except blocks.SparkSetupError as e:
        print(f"ember.jvm: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
