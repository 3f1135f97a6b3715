"""Midjourney's prompt language, parsed exactly.

Section numbers (§N) in this package refer to docs/reference/mj-prompt.md, the specification the
parser follows; docs/prompt.md describes it for users.

Public interface::

    parse(text, version="7") -> ParsedPrompt   # raises PromptError (only) for invalid prompts
    normal_form(text, version="7") -> dict     # §11 dict, {"ok": False, "error", "error_code"} on error
    PromptError(ValueError)                    # .message (exact §10 wording), .code (§10 error_code)
    ParsedPrompt                               # frozen; .to_dict() is the §11 normal form
    grid_size("16:9") -> (1456, 816)           # §5.3 V7 grid pixel size

Dialect policies (EvoLink, APIXO, kie) are in ``openmj.core.prompt.policies``. See
``ParsedPrompt``'s docstring for the engine accessors (``aspect``, ``seed``, ``negative_terms`` …).
"""

from .aspect import grid_size
from .errors import PromptError
from .parser import MAX_JOBS, MAX_LENGTH, ParsedPrompt, normal_form, parse

__all__ = ["MAX_JOBS", "MAX_LENGTH", "ParsedPrompt", "PromptError", "grid_size", "normal_form", "parse"]
