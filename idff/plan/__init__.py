"""Job planning: which jobs (and so which files) each experiment and each table or figure needs.

Pure and cheap: the Snakefile imports it to list rule inputs, and the report imports it to find
the files it reads, so a rule and its table read exactly the same files. Paths come from
``idff.layout``; figure settings (``experiments.<exp>.figures.<name>`` over their defaults) are
read and checked here, before any job runs.
"""
