"""The command groups of :class:`~salesflow.desk.SalesDesk`, one module per aggregate."""
