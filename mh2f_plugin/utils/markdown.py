"""Markdown tables, as the commands print them and write them to files."""


def markdown_table(header, rows):
    """A Markdown table: ``header`` a sequence of column names, ``rows`` sequences of cell texts."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    return '\n'.join(lines + ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows])
