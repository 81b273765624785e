"""Vision-language models: loading Hugging Face image-text-to-text models, scoring requests with
images (VLMScorer), and the offline VLM that harness builds (recipe, train split, encoder, build).

Importing this package is cheap: torch and transformers load only with the modules that need them.
"""
