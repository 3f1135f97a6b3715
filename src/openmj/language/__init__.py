"""Language models around the prompt: which language a text is in, and its English translation.

Run by the API process at submit (a prompt is translated before it is parsed and priced), so a
translated prompt is checked, moderated and shown like one written in English. The structure rules
are the core's (core/prompt/translation.py); this package only runs the models (docs/prompt.md).
"""
