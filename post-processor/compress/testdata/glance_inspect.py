"""Runs the format inspector of the installed Glance on one image file.

Glance, Nova and Cinder inspect uploaded images with this module and refuse
those whose format does not match disk_format or that fail its safety
checks. Prints one JSON object: the detected format, the virtual size it
reads and whether the safety checks pass.
"""
import json
import sys

from glance.common import format_inspector

inspector = format_inspector.detect_file_format(sys.argv[1])
print(json.dumps({
    "format": str(inspector),
    "virtual_size": inspector.virtual_size,
    "safe": bool(inspector.safety_check()),
}))
