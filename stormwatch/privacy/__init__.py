"""Participant safety in one room: who an output names, the pseudonyms, hidden mentions and links, safe cells.

DESIGN.md's rule "nothing that leaves the machine names an ordinary supporter" is kept here, for every output
alike (report, dashboard, live page, alerts, storm intelligence): `naming` (the policy, pseudonyms, rewritten
texts), `hiding` (what in a text can name a person) and `cleaning` (formula-safe CSV cells). Never imports
metrics or report: they import it. The modules are imported by name (`privacy.naming`), so that an output
needing only `cleaning` does not load the store.
"""
