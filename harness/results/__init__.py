"""The results file: its schema (schema.py) and the renderers over it (terminal, markdown, html)."""
