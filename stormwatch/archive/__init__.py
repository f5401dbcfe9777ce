"""Archives of raw pages: `writer` appends every page as received (gzip JSONL, twarc2 lines for X), `reader`
reads archive files of any supported format record by record.

Import the half you need (`from stormwatch.archive.writer import RawArchive`): the import reader process
loads only the reading half.
"""
