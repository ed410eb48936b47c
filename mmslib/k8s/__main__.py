"""``python -m mmslib.k8s cleanup --run-id X [--namespace N]`` (and ``validate FILES``)."""
import sys

from .cleanup import main

sys.exit(main())
