"""The tables other tables' foreign keys point at, imported (by watchtower.db) before any session is opened.

A table's module is imported by the first code that uses it (a router, a job, the access check), not at start:
watchtower.tables, which imports all 46, costs ~0.2 s that a start or an empty monitor pass mostly does not
need. But SQLAlchemy resolves a foreign key by its target table's name, and a flush of a row whose foreign key
names a table nobody imported yet fails (NoReferencedTableError). These modules hold every table any foreign key
names (tests/watchtower/test_startup.py checks it against every table), so any table imported later resolves.
"""

from postmortems import models as postmortems_models
from watchtower.auth import models as auth_models
from watchtower.policy import models as policy_models
from watchtower.registry import models as registry_models

MODULES = (postmortems_models, auth_models, policy_models, registry_models)
