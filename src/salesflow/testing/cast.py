"""The people of salesflow's scenario tests: two teams, their managers, and the company's roles.

The east team is ann and bob with their manager mia; the west team is wes with wil. dan directs
sales for both; pat (project manager), fin (finance) and leo (legal) review contracts; root is an
administrator. Desk tests, the stateful desk machine and plugin authors' own scenarios share them,
so that "wil may not approve ann's quote" reads the same everywhere.
"""

from __future__ import annotations

from salesflow.domain.actors import Actor

__all__ = ["ANN", "BOB", "CAST", "DAN", "FIN", "LEO", "MIA", "PAT", "ROOT", "WES", "WIL"]

ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})
BOB = Actor("bob", roles={"sales_rep"}, teams={"east"})
WES = Actor("wes", roles={"sales_rep"}, teams={"west"})
MIA = Actor("mia", roles={"sales_manager"}, teams={"east"})
WIL = Actor("wil", roles={"sales_manager"}, teams={"west"})
DAN = Actor("dan", roles={"sales_director"})
PAT = Actor("pat", roles={"project_manager"})
FIN = Actor("fin", roles={"finance"})
LEO = Actor("leo", roles={"legal"})
ROOT = Actor("root", roles={"admin"})

CAST: dict[str, Actor] = {a.id: a for a in (ANN, BOB, WES, MIA, WIL, DAN, PAT, FIN, LEO, ROOT)}
"""Everyone, by id."""
