"""Foot-traffic statistics: KPIs, counter-outage detection, demand forecast, CSV import.

Modules: :mod:`.hours` (store-local hourly records), :mod:`.quality` (outages),
:mod:`.analytics` (KPIs and comparisons), :mod:`.forecast` (hourly demand),
:mod:`.importer` (CSV import and the ``traffic.import/1`` mutation). No Qt here.
"""
