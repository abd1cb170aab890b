"""The results of a session: what it records (record.py), the file format and typed document (document.py), and the
renderers over that document (terminal, markdown, html, comparison)."""
