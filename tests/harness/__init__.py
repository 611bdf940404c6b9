"""What more than one test (and bench/) needs: the real stack, browser steps, fakes and configs.

Test modules import from here and never from each other (tests/unit/test_import_layers.py).
"""
