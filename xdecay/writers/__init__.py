"""The writers: terminal tables, markdown and JSON for compare, explain and train, and the pages of xdecay report."""

# Every command's writers (each module's WRITERS) take these formats, and a file written
# with --out has this extension: the command line offers them without importing them all.
EXTENSIONS = {"table": "txt", "markdown": "md", "json": "json"}
FORMATS = tuple(sorted(EXTENSIONS))
