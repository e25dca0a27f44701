"""ember's Spark block-service plugin: its Java source and the jar built from it (``ember-blocks.jar``).

``python -m ember.jvm`` prints the spark-submit arguments that load it; ``python -m ember.jvm --build``
rebuilds the shipped jar from the source (needs a JDK and Spark's jars).
"""
