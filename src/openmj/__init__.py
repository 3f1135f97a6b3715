"""openmj: self-hosted image generation speaking the Midjourney APIs."""

import os as _os

__version__ = "0.1.0"

#: Libraries that report home unless told not to. openmj makes no outbound request the operator
#: did not configure (docs/security.md), so these are off before any of them is imported; an
#: operator who wants one on sets the variable explicitly.
NO_TELEMETRY = {
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime (segmenter, NudeNet): a DNS look-up every few seconds
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub, diffusers, transformers
    "DO_NOT_TRACK": "1",  # the cross-tool convention (gradio, huggingface_hub and others honour it)
}
for _name, _value in NO_TELEMETRY.items():
    _os.environ.setdefault(_name, _value)
