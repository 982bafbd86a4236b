"""graphattach's benchmark: the physical limit, nginx and @tus/server as anchors, and graphattach.

``python -m bench`` (or ``bench/run``) runs the suite, ``python -m bench --smoke`` a tiny version
of it, ``python -m bench crash --trials 20`` the crash-durability trials. See bench/README.md.
"""
