"""What each page says and offers, apart from its layout: its controls (a
``ui.Controls`` declaration), its lessons, and its longer words.

These modules import ``ui`` only (no TensorFlow), so the landing page reads
every page's lessons at once, and the tests read the declarations.
"""
