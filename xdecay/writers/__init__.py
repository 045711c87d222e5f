"""The writers: terminal tables, markdown and JSON for compare, explain and train, and the pages of xdecay report."""
